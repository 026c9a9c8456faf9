// The packages are built and judged with Debian tools: the tests run on Linux.

//go:build linux

package pack

import (
	"bytes"
	"debug/pe"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// TestExeIsConsolePE32PlusWithVersion: carrel.exe is a 64-bit console
// program (file(1) and the PE header agree) whose version resource carries
// the build's version.
func TestExeIsConsolePE32PlusWithVersion(t *testing.T) {
	exe := windowsExe(t)
	out, err := exec.Command(testenv.NeedTool(t, "file"), "-b", exe).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "PE32+ executable (console) x86-64") {
		t.Errorf("file carrel.exe = %q; want a PE32+ console executable for x86-64", out)
	}
	f, err := pe.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 || !ok || oh.Subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_CUI {
		t.Errorf("PE header: machine %#x, optional header %T; want AMD64, PE32+, console subsystem", f.Machine, f.OptionalHeader)
	}
	f.Close()

	v, err := readPEVersion(exe)
	if err != nil {
		t.Fatalf("reading the version resource: %v", err)
	}
	want := testVersion1.Quad()
	if v.File != want || v.Product != want {
		t.Errorf("version resource: file %v, product %v; want %v", v.File, v.Product, want)
	}
	for k, w := range map[string]string{
		"ProductName": "carrel", "OriginalFilename": "carrel.exe",
		"ProductVersion": testVersion1.Describe, "FileVersion": testVersion1.Describe,
	} {
		if got := v.Strings[k]; got != w {
			t.Errorf("version string %s = %q; want %q", k, got, w)
		}
	}
}

// TestReadPEVersionFails makes sure the resource reader can fail: a
// Windows program without a version resource has none to read.
func TestReadPEVersionFails(t *testing.T) {
	testenv.NeedTool(t, MinGW)
	dir := t.TempDir()
	src := filepath.Join(dir, "x.c")
	os.WriteFile(src, []byte("int main(void){return 0;}\n"), 0o644)
	exe := filepath.Join(dir, "x.exe")
	if out, err := exec.Command(MinGW, "-o", exe, src).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", MinGW, err, out)
	}
	if v, err := readPEVersion(exe); err == nil {
		t.Errorf("readPEVersion(no resource) = %+v; want an error", v)
	}
}

// TestMSITables reads the MSI back with msiinfo (msitools) and checks the
// rows that make it install, start, upgrade and uninstall carrel.
func TestMSITables(t *testing.T) {
	exe := windowsExe(t)
	msi := buildMSI(t, exe, nil)
	db := readMSI(t, msi)

	if got := db.row("File", "CarrelExe"); got == nil || got[2] != "carrel.exe" || got[3] != fileSize(t, exe) {
		t.Errorf("File row = %q; want carrel.exe of %s bytes", got, fileSize(t, exe))
	}
	if got := db.row("Component", "CarrelExe"); got == nil || got[2] != "INSTALLFOLDER" || got[3] != "256" {
		t.Errorf("Component row = %q; want a 64-bit component in INSTALLFOLDER", got)
	}
	for dir, want := range map[string][2]string{
		"INSTALLFOLDER": {"ProgramFiles64Folder", "carrel"},
		"CARRELDATA":    {"CommonAppDataFolder", "carrel"},
	} {
		if got := db.row("Directory", dir); got == nil || got[1] != want[0] || got[2] != want[1] {
			t.Errorf("Directory %s = %q; want %s\\%s", dir, got, want[0], want[1])
		}
	}
	// Own process (16), automatic start (2), normal error control (1), as
	// LocalSystem, running `carrel run --service` with the ProgramData config.
	si := db.row("ServiceInstall", "CarrelService")
	if si == nil || si[1] != "carrel" || si[3] != "16" || si[4] != "2" || si[5] != "1" || si[8] != "LocalSystem" ||
		si[10] != `run --service --config "[CARRELDATA]carrel.toml"` || si[11] != "CarrelExe" {
		t.Errorf("ServiceInstall row = %q", si)
	}
	// Start on install (1), stop on install and uninstall (2|32), delete on
	// uninstall (128); wait for it.
	if sc := db.row("ServiceControl", "CarrelService"); sc == nil || sc[1] != "carrel" || sc[2] != "163" || sc[4] != "1" {
		t.Errorf("ServiceControl row = %q; want events 163 and wait", sc)
	}
	props := db.table("Property")
	if got := props["ProductVersion"]; got == nil || got[1] != testVersion1.MSI() {
		t.Errorf("ProductVersion = %q; want %s", got, testVersion1.MSI())
	}
	if got := props["UpgradeCode"]; got == nil || !strings.EqualFold(got[1], "{"+UpgradeCode+"}") {
		t.Errorf("UpgradeCode = %q; want {%s}", got, UpgradeCode)
	}
	if got := props["SecureCustomProperties"]; got == nil || !strings.Contains(";"+got[1]+";", ";PCID;") || !strings.Contains(";"+got[1]+";", ";RECIPIENT;") {
		t.Errorf("SecureCustomProperties = %q; want PCID and RECIPIENT in it", got)
	}

	// Upgrades: everything up to and including this version is replaced;
	// a newer installed version stops the install.
	upgrades := map[string][]string{}
	for _, r := range db.rows("Upgrade") {
		upgrades[r[6]] = r
	}
	if r := upgrades["WIX_UPGRADE_DETECTED"]; r == nil || r[1] != "0.0.0" || r[2] != testVersion1.MSI() ||
		r[4] != strconv.Itoa(upgradeMigrateFeatures|upgradeMinInclusive|upgradeMaxInclusive) {
		t.Errorf("upgrade row = %q", r)
	}
	if r := upgrades["WIX_DOWNGRADE_DETECTED"]; r == nil || r[1] != testVersion1.MSI() || r[4] != strconv.Itoa(upgradeOnlyDetect) {
		t.Errorf("downgrade row = %q", r)
	}
	// The message the README promises (Wine's Windows Installer does not
	// log it, so the MSI test under Wine cannot see it).
	if r := db.row("LaunchCondition", "NOT WIX_DOWNGRADE_DETECTED"); r == nil || r[1] != "A newer version of carrel is already installed." {
		t.Errorf("LaunchCondition against downgrades = %q; want the README's message", r)
	}

	// The custom actions: deferred (0x400), as SYSTEM (0x800), with the
	// ACL of internal/config and the silent-install properties.
	for name, want := range map[string]string{
		"SecureDataFolder":   `"[CARRELDATA]." ` + strings.Join(config.SecureACLArgs, " "),
		"CreateBookingGroup": `service group --config "[CARRELDATA]carrel.toml"`,
		"WriteConfig":        `config init --pc-id "[PCID]" --recipient "[RECIPIENT]" --out "[CARRELDATA]carrel.toml"`,
		"ServiceRecovery":    "failure carrel reset= 300 actions= restart/5000",
	} {
		r := db.row("CustomAction", name)
		if r == nil {
			t.Errorf("no custom action %s", name)
			continue
		}
		typ, _ := strconv.Atoi(r[1])
		if typ&0x400 == 0 || typ&0x800 == 0 || !strings.HasPrefix(r[3], want) {
			t.Errorf("custom action %s = %q; want deferred, not impersonated, running %q", name, r, want)
		}
		// Return="ignore" (0x40) only where a failure leaves a working
		// carrel (see carrel.wxs); the folder's ACL and the config must
		// fail the install when they fail.
		ignore := name == "CreateBookingGroup" || name == "ServiceRecovery"
		if (typ&0x40 != 0) != ignore {
			t.Errorf("custom action %s has type %#x; want its failure ignored: %v", name, typ, ignore)
		}
	}

	// The sequence: the old version goes before anything is installed; the
	// folder is secured, the config written and then the group it names
	// made, after the files and before the service is installed and started.
	seq := db.sequence("InstallExecuteSequence")
	order := []string{"InstallValidate", "RemoveExistingProducts", "InstallInitialize", "CreateFolders", "InstallFiles",
		"SecureDataFolder", "WriteConfig", "CreateBookingGroup", "InstallServices", "ServiceRecovery", "StartServices", "InstallFinalize"}
	for i := 1; i < len(order); i++ {
		a, okA := seq[order[i-1]]
		b, okB := seq[order[i]]
		if !okA || !okB || a >= b {
			t.Errorf("InstallExecuteSequence: %s (%d) must come before %s (%d)", order[i-1], a, order[i], b)
		}
	}
	// The event log source of the service.
	var eventlog int
	for _, r := range db.rows("Registry") {
		if r[1] == "2" && r[2] == `SYSTEM\CurrentControlSet\Services\EventLog\Application\carrel` {
			eventlog++
		}
	}
	if eventlog != 3 {
		t.Errorf("%d event log registry values; want EventMessageFile, TypesSupported, CustomSource", eventlog)
	}

	// 64-bit package, and the exe inside is the exe given.
	if out, err := exec.Command("msiinfo", "suminfo", msi).Output(); err != nil || !strings.Contains(string(out), "Template: x64;1033") {
		t.Errorf("msiinfo suminfo: %v\n%s\nwant Template: x64;1033", err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command("msiextract", "-C", dir, msi).CombinedOutput(); err != nil {
		t.Fatalf("msiextract: %v %s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "carrel", "carrel.exe"))
	want, _ := os.ReadFile(exe)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("the MSI's carrel.exe differs from the one built (%v)", err)
	}
}

// TestMSISigned signs with a throwaway self-signed certificate and has
// osslsigncode verify both signatures; an unsigned MSI must fail the same
// check.
func TestMSISigned(t *testing.T) {
	openssl := testenv.NeedTool(t, "openssl", "osslsigncode")
	exe := windowsExe(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	out, err := exec.Command(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
		"-days", "2", "-subj", "/CN=carrel test signing", "-addext", "extendedKeyUsage=codeSigning",
		"-addext", "keyUsage=digitalSignature").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v %s", err, out)
	}
	signed := buildMSI(t, exe, &Signer{Cert: cert, Key: key})
	verify := func(path string) error {
		out, err := exec.Command("osslsigncode", "verify", "-CAfile", cert, "-in", path).CombinedOutput()
		if err == nil && !strings.Contains(string(out), "Signature verification: ok") {
			err = errors.New(`no "Signature verification: ok"`)
		}
		if err != nil {
			return &verifyError{path, err, string(out)}
		}
		return nil
	}
	if err := verify(signed); err != nil {
		t.Error(err)
	}
	x := t.TempDir()
	if out, err := exec.Command("msiextract", "-C", x, signed).CombinedOutput(); err != nil {
		t.Fatalf("msiextract: %v %s", err, out)
	}
	if err := verify(filepath.Join(x, "carrel", "carrel.exe")); err != nil {
		t.Errorf("carrel.exe in the signed MSI: %v", err)
	}
	if err := verify(buildMSI(t, exe, nil)); err == nil {
		t.Error("osslsigncode verify accepts an unsigned MSI; the check above proves nothing")
	}
}

type verifyError struct {
	path string
	err  error
	out  string
}

func (e *verifyError) Error() string {
	return "osslsigncode verify " + filepath.Base(e.path) + ": " + e.err.Error() + "\n" + e.out
}

func buildMSI(t *testing.T, exe string, sign *Signer) string {
	t.Helper()
	testenv.NeedTool(t, "wixl", "msibuild", "msiinfo", "msiextract")
	msi, err := MSI(MSIOptions{Exe: exe, Version: testVersion1, OutDir: t.TempDir(), Sign: sign})
	if err != nil {
		t.Fatal(err)
	}
	return msi
}

func fileSize(t *testing.T, path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(fi.Size(), 10)
}

// msiDB is an MSI's tables as msiinfo exports them: tab-separated, three
// header lines (names, types, table and key), then one line per row.
type msiDB struct {
	t       *testing.T
	path    string
	dumped  map[string][][]string
	present map[string]bool
}

func readMSI(t *testing.T, path string) *msiDB {
	t.Helper()
	out, err := exec.Command("msiinfo", "tables", path).Output()
	if err != nil {
		t.Fatalf("msiinfo tables: %v", err)
	}
	db := &msiDB{t: t, path: path, dumped: map[string][][]string{}, present: map[string]bool{}}
	for _, name := range strings.Fields(string(out)) {
		db.present[name] = true
	}
	return db
}

func (db *msiDB) rows(table string) [][]string {
	db.t.Helper()
	if r, ok := db.dumped[table]; ok {
		return r
	}
	if !db.present[table] {
		db.t.Fatalf("the MSI has no %s table", table)
	}
	out, err := exec.Command("msiinfo", "export", db.path, table).Output()
	if err != nil {
		db.t.Fatalf("msiinfo export %s: %v", table, err)
	}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n"), "\n")
	var rows [][]string
	for _, l := range lines[min(3, len(lines)):] {
		rows = append(rows, strings.Split(l, "\t"))
	}
	db.dumped[table] = rows
	return rows
}

// table indexes rows by their first column.
func (db *msiDB) table(name string) map[string][]string {
	db.t.Helper()
	m := map[string][]string{}
	for _, r := range db.rows(name) {
		m[r[0]] = r
	}
	return m
}

func (db *msiDB) row(table, key string) []string {
	db.t.Helper()
	return db.table(table)[key]
}

// sequence maps each action of a sequence table to its number.
func (db *msiDB) sequence(table string) map[string]int {
	db.t.Helper()
	m := map[string]int{}
	for _, r := range db.rows(table) {
		if n, err := strconv.Atoi(r[len(r)-1]); err == nil {
			m[r[0]] = n
		}
	}
	return m
}
