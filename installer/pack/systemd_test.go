// The packages are built and judged with Debian tools: the tests run on Linux.

//go:build linux

package pack

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/seal"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// TestSystemd installs the .deb into a Debian root booted under systemd
// (systemd-nspawn -b) the way a fleet installs it, and shows under the
// real hardened unit what the README promises: the service runs with its
// hardening in force, the booking client's group uses the CLI and others
// are refused, a misuse case turns capture on and its end turns it off,
// clean and unclean restarts keep what they must, and apt's upgrade,
// remove and purge do what the README says.
//
// The steps share one container and run in order; each step that can
// stands on its own, so one failing step does not hide the others.
func TestSystemd(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "systemd-nspawn", "nsenter", "age", "dig")
	began := time.Now()
	deb1, deb2 := buildDeb(t, testVersion1), buildDeb(t, testVersion2)
	root := debianRoot(t)
	// Not /tmp: the container's /tmp is its own tmpfs.
	for _, deb := range []string{deb1, deb2} {
		if err := copyFile(deb, filepath.Join(root, "root", filepath.Base(deb))); err != nil {
			t.Fatal(err)
		}
	}
	identity := filepath.Join(t.TempDir(), "head-librarian.key")
	recipient, err := seal.WriteIdentityFile(identity, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := bootContainer(t, root)
	s := &systemdTest{container: c, identity: identity, recipient: recipient}

	t.Run("Install", func(t *testing.T) { s.on(t).install(filepath.Base(deb1)) })
	if out, _ := c.sh("root", "systemctl is-active carrel"); strings.TrimSpace(out) != "active" {
		t.Fatalf("carrel is not running after the install (%s); the other steps need it", strings.TrimSpace(out))
	}
	t.Run("Hardening", func(t *testing.T) { s.on(t).hardening() })
	t.Run("BookingGroup", func(t *testing.T) { s.on(t).bookingGroup() })
	t.Run("CaseCapture", func(t *testing.T) { s.on(t).caseCapture() })
	t.Run("CleanRestart", func(t *testing.T) { s.on(t).cleanRestart() })
	t.Run("KillRestart", func(t *testing.T) { s.on(t).killRestart() })
	t.Run("DataDirElsewhere", func(t *testing.T) { s.on(t).dataDirElsewhere() })
	t.Run("Upgrade", func(t *testing.T) { s.on(t).upgrade(filepath.Base(deb2)) })
	t.Run("RemoveReinstallPurge", func(t *testing.T) { s.on(t).removeReinstallPurge(filepath.Base(deb2)) })
	t.Logf("TestSystemd took %s (debootstrap included when the root was not cached)", time.Since(began).Round(100*time.Millisecond))
}

// systemdTest is the state the steps of TestSystemd share.
type systemdTest struct {
	*container
	identity, recipient string // the head librarian's age key pair
}

// on points the helpers at the running subtest, so that its failures are
// its own.
func (s *systemdTest) on(t *testing.T) *systemdTest {
	s.container.t = t
	return s
}

// The fleet's install command, word for word (README, Install).
const aptInstall = "DEBIAN_FRONTEND=noninteractive apt-get install -y ./"

func (s *systemdTest) install(deb string) {
	t := s.t
	out := s.run("cd /root && " + aptInstall + deb)
	if !strings.Contains(out, "Setting up carrel ("+strings.TrimSuffix(strings.TrimPrefix(deb, "carrel_"), "_amd64.deb")+")") {
		t.Errorf("apt-get install did not set up carrel:\n%s", out)
	}
	s.waitRunning(0)
	// `systemctl status carrel` as the README says to check it.
	if out, err := s.sh("root", "systemctl status carrel --no-pager"); err != nil || !strings.Contains(out, "Active: active (running)") {
		t.Errorf("systemctl status carrel: %v\n%s", err, out)
	}
	if out := s.run("systemctl is-enabled carrel"); strings.TrimSpace(out) != "enabled" {
		t.Errorf("systemctl is-enabled carrel = %q; want enabled (started at every boot)", out)
	}
	// The journal has systemd's word and carrel's that it started.
	s.wait("the journal to say carrel started", func() (bool, string) {
		j := s.journal("-u carrel")
		return strings.Contains(j, "Started carrel.service") && strings.Contains(j, "carrel started"), j
	})
	if st := s.status(); st.Mode != "bookings-only" || st.PC != s.name || st.Version != testVersion1.Describe {
		t.Errorf("status: mode %q, pc %q, version %q; want bookings-only on pc %q, version %s", st.Mode, st.PC, st.Version, s.name, testVersion1.Describe)
	}
}

// hardening reads the service process's status from /proc: what the unit
// asks for is in force, not only written down.
func (s *systemdTest) hardening() {
	t := s.t
	pid := s.mainPID()
	status := s.run(fmt.Sprintf("cat /proc/%d/status", pid))
	want := map[string]string{
		"NoNewPrivs": "1",                // NoNewPrivileges=yes
		"Seccomp":    "2",                // SystemCallFilter: a filter is installed
		"CapBnd":     "0000000000002001", // CAP_CHOWN (0) + CAP_NET_RAW (13), nothing else
		"CapEff":     "0000000000002001",
		"Uid":        "0\t0\t0\t0",
	}
	for _, l := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if w, found := want[k]; ok && found {
			if v = strings.TrimSpace(v); v != w {
				t.Errorf("/proc/%d/status %s: %q; want %q", pid, k, v, w)
			}
			delete(want, k)
		}
	}
	for k := range want {
		t.Errorf("/proc/%d/status has no %s line", pid, k)
	}
	// The API socket belongs to the booking-client group (README, The local API).
	if out := strings.TrimSpace(s.run("stat -c '%A %U %G' /run/carrel/api.sock")); out != "srw-rw---- root carrel-booking" {
		t.Errorf("api.sock: %s; want srw-rw---- root carrel-booking", out)
	}
	// The data folder as postinst made it, and only the service writes it.
	if out := strings.TrimSpace(s.run("stat -c '%A %U %G' /var/lib/carrel")); out != "drwx------ root root" {
		t.Errorf("/var/lib/carrel: %s; want drwx------ root root", out)
	}
}

// bookingGroup: the booking client's account, once in carrel-booking as
// the README says, records and ends a booking with `carrel booking`; an
// account outside the group is refused with the hint; root lists it.
func (s *systemdTest) bookingGroup() {
	t := s.t
	s.run("useradd --system --no-create-home booking-client && usermod -aG carrel-booking booking-client && useradd --system --no-create-home patron")
	out, err := s.sh("booking-client", "carrel booking start --ref sysd-member --patron 4711")
	if err != nil || !strings.Contains(out, "started booking sysd-member") {
		t.Errorf("a member of carrel-booking: carrel booking start: %v\n%s", err, out)
	}
	out, err = s.sh("booking-client", "carrel booking end --ref sysd-member")
	if err != nil || !strings.Contains(out, "ended booking sysd-member") {
		t.Errorf("a member of carrel-booking: carrel booking end: %v\n%s", err, out)
	}
	out, err = s.sh("patron", "carrel booking start --ref sysd-outsider")
	if code := exitCode(err); code != 1 || !strings.Contains(out, "members of the booking-client group") {
		t.Errorf("an account outside carrel-booking: carrel booking start exited %d; want 1 with the hint about the group:\n%s", code, out)
	}
	bs := s.bookings()
	if b, ok := bs["sysd-member"]; !ok || b.Ended != "ended" || !b.HasPatron || b.PC != s.name {
		t.Errorf("root lists the member's booking as %+v (found %v); want it ended, with a patron, on %s", b, ok, s.name)
	}
	if _, ok := bs["sysd-outsider"]; ok {
		t.Errorf("the refused account's booking was recorded")
	}
}

// caseCapture declares a valid case in /etc/carrel/carrel.toml: capture
// comes on (on lo: the container has no other interface), real traffic is
// counted live and sealed to the head librarian's key, and the case's end
// turns capture off.
func (s *systemdTest) caseCapture() {
	t := s.t
	cfgPath := s.path("/etc/carrel/carrel.toml")
	base, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	edited := string(base)
	for old, new := range map[string]string{
		`interface = ""`:  `interface = "lo"`,
		`recipients = []`: `recipients = ["` + s.recipient + `"]`,
	} {
		if !strings.Contains(edited, old) {
			t.Fatalf("the shipped config has no line %s", old)
		}
		edited = strings.Replace(edited, old, new, 1)
	}
	start := time.Now().Add(-time.Minute)
	caseTable := func(end time.Time) string {
		return fmt.Sprintf(`
[[case]]
id = "sysd-1"
reason = "Repeated attacks on the library network from the reading room"
category = "attack-on-network"
declared_by = "Anne Berg"
approved_by = "Bo Dahl"
notice_posted_at = %s
start = %s
end = %s
pcs = [%q]
mode = "metadata"
`, rfc(start.Add(-time.Hour)), rfc(start), rfc(end), s.name)
	}
	// Rewriting the file below changes only the case's end.
	sum := s.writeConfig(edited + caseTable(time.Now().Add(time.Hour)))
	phase := time.Now()
	s.wait("capture to come on under case sysd-1", func() (bool, string) {
		st := s.status()
		return st.ConfigSHA256 == sum && st.Capture != nil && st.Capture.On && st.Capture.Case == "sysd-1" && st.Capture.Interface == "lo",
			fmt.Sprintf("config %.12s, mode %s: %s", st.ConfigSHA256, st.Mode, st.ModeReason)
	})

	t.Logf("capture came on %s after the config was written", time.Since(phase).Round(10*time.Millisecond))

	// Real DNS questions on lo (no server needs to answer: the question is
	// in the packet). Each name is unique, to find it in the sealed file.
	var asked []string
	query := func() {
		name := fmt.Sprintf("q%d.sysd-%s.example.test", len(asked), s.name)
		asked = append(asked, name)
		s.inNetns("dig", "+time=1", "+tries=1", "@127.0.0.1", name, "A")
	}
	// The count in status is live: it rises with the traffic, batch after
	// batch, while capture runs and nothing else changes. A count that is
	// refreshed only when carrel re-decides (every 30 s, or at a config
	// change) cannot rise ten times before the deadline; a live one does
	// in as many status calls.
	packets := func() uint64 {
		st := s.status()
		if st.Capture == nil || !st.Capture.On {
			t.Fatalf("capture went off while traffic was sent: %s", st.ModeReason)
		}
		return st.Capture.Packets
	}
	const rises = 10
	phase = time.Now()
	last, risen := packets(), 0
	if err := s.poll(waitDeadline, func() (bool, string) {
		query()
		if n := packets(); n > last {
			last, risen = n, risen+1
		}
		return risen >= rises, fmt.Sprintf("the packet count in status rose %d times, to %d, over %d DNS questions", risen, last, len(asked))
	}); err != nil {
		t.Errorf("carrel status does not show the live packet count while capture runs: %v", err)
	}
	t.Logf("%d DNS questions sent in %s while capture ran", len(asked), time.Since(phase).Round(10*time.Millisecond))
	query()

	// The case ends a little from now: carrel picks the change up, keeps
	// capturing until the end, then turns capture off by itself.
	// Whole seconds: the config holds no fraction.
	end := time.Now().Add(10 * time.Second).Truncate(time.Second)
	sum = s.writeConfig(edited + caseTable(end))
	s.wait("capture to go off at the case's end", func() (bool, string) {
		st := s.status()
		var state string
		if st.Capture != nil {
			for _, cs := range st.Capture.Cases {
				if cs.ID == "sysd-1" {
					state = cs.State
				}
			}
		}
		return st.ConfigSHA256 == sum && st.Capture != nil && !st.Capture.On && state == "ended",
			fmt.Sprintf("config %.12s, mode %s, case %q: %s", st.ConfigSHA256, st.Mode, state, st.ModeReason)
	})
	if now := time.Now(); now.Before(end) {
		t.Errorf("capture went off at %s, before the case's end %s", now.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	// The audit log has the switch on and the switch off at the end, with
	// at least one packet for each DNS question.
	switches := s.audit("capture.start,capture.stop", "case=sysd-1")
	if len(switches) != 2 || switches[0].Kind != "capture.start" || switches[1].Kind != "capture.stop" {
		t.Errorf("audit log for case sysd-1: %+v; want one capture.start and one capture.stop", switches)
	} else {
		stop := switches[1]
		packets := stop.Fields["packets"]
		n, err := strconv.Atoi(packets)
		if err != nil || n < len(asked) {
			t.Errorf("capture.stop records %q packets; want at least the %d DNS questions sent", packets, len(asked))
		}
		if stop.Time.Before(end) {
			t.Errorf("capture.stop at %s, before the case's end %s", stop.Time, end)
		}
	}
	if st := s.status(); st.Mode != "bookings-only" || st.Capture.Segments == 0 {
		t.Errorf("after the case: mode %s, %d sealed segments; want bookings-only and at least one segment", st.Mode, st.Capture.Segments)
	}

	// What was captured is sealed: no name in the clear on disk, every
	// name in what the head librarian's key decrypts.
	sealed, _ := filepath.Glob(s.path("/var/lib/carrel/traffic/*.age"))
	if len(sealed) == 0 {
		t.Fatalf("no sealed segment under /var/lib/carrel/traffic")
	}
	var plain strings.Builder
	for _, f := range sealed {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), s.name) {
			t.Errorf("%s holds the DNS names in the clear", filepath.Base(f))
		}
		out, err := exec.Command("age", "--decrypt", "--identity", s.identity, f).Output()
		if err != nil {
			t.Fatalf("age --decrypt %s: %v", filepath.Base(f), err)
		}
		plain.Write(out)
	}
	for _, name := range asked {
		if !strings.Contains(plain.String(), name) {
			t.Errorf("the sealed traffic lacks the DNS question %s", name)
		}
	}
	// The config stays as it is now (case ended) for the steps after.
}

// writeConfig replaces /etc/carrel/carrel.toml atomically, root-owned and
// 0600 as carrel demands, and returns its SHA-256 as status reports it.
func (s *systemdTest) writeConfig(text string) string {
	s.t.Helper()
	dst := s.path("/etc/carrel/carrel.toml")
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		s.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// cleanRestart: `systemctl restart carrel` is a clean stop; an open
// booking stays open and can be ended afterwards, and neither the log nor
// the audit log calls the stop unclean.
func (s *systemdTest) cleanRestart() {
	t := s.t
	uncleanBefore := len(s.audit("service.unclean-stop", ""))
	s.run("carrel booking start --ref sysd-restart")
	old := s.mainPID()
	s.run("systemctl restart carrel")
	pid := s.waitRunning(old)
	if b := s.bookings()["sysd-restart"]; b.Ref == "" || b.End != nil || b.Ended != "" {
		t.Errorf("after a clean restart the open booking is %+v; want it still open", b)
	}
	if out, err := s.sh("root", "carrel booking end --ref sysd-restart"); err != nil {
		t.Errorf("ending the booking after a clean restart: %v\n%s", err, out)
	} else if b := s.bookings()["sysd-restart"]; b.Ended != "ended" {
		t.Errorf("after ending it the booking is %+v; want ended", b)
	}
	if log := s.runLog(pid); unclean.MatchString(log) {
		t.Errorf("after systemctl restart, carrel's log calls the stop unclean:\n%s", log)
	}
	if n := len(s.audit("service.unclean-stop", "")); n != uncleanBefore {
		t.Errorf("the audit log has %d service.unclean-stop entries after a clean restart; want %d", n, uncleanBefore)
	}
}

// unclean matches carrel's log lines about a previous run that did not
// stop cleanly.
var unclean = regexp.MustCompile(`(?i)unclean|not stop cleanly`)

// killRestart: SIGKILL the service; systemd restarts it (Restart=on-failure);
// every acknowledged booking is still there, the open one closed as
// interrupted, and the log says the stop was unclean.
func (s *systemdTest) killRestart() {
	t := s.t
	s.run("carrel booking start --ref sysd-kill-ended && carrel booking end --ref sysd-kill-ended")
	s.run("carrel booking start --ref sysd-kill-open")
	before := s.bookings()
	uncleanBefore := len(s.audit("service.unclean-stop", ""))
	old := s.mainPID()
	s.run(fmt.Sprintf("kill -KILL %d", old))
	pid := s.waitRunning(old)
	after := s.bookings()
	for ref, b := range before {
		a, ok := after[ref]
		switch {
		case !ok:
			t.Errorf("booking %s was lost by the kill", ref)
		case b.Ended != "" && (a.Ended != b.Ended || !a.End.Equal(*b.End)):
			t.Errorf("booking %s was %s at %s; after the kill %s at %v", ref, b.Ended, b.End, a.Ended, a.End)
		}
	}
	if b := after["sysd-kill-open"]; b.Ended != "interrupted" || b.End == nil {
		t.Errorf("the booking open at the kill is %+v; want it closed as interrupted", b)
	}
	if b := after["sysd-kill-ended"]; b.Ended != "ended" {
		t.Errorf("the booking ended before the kill is %+v; want ended", b)
	}
	if log := s.runLog(pid); !unclean.MatchString(log) {
		t.Errorf("after kill -9, carrel's log does not say the previous stop was unclean:\n%s", log)
	}
	if n := len(s.audit("service.unclean-stop", "")); n != uncleanBefore+1 {
		t.Errorf("the audit log has %d service.unclean-stop entries after the kill; want %d", n, uncleanBefore+1)
	}
	if out := strings.TrimSpace(s.run("systemctl show -p NRestarts --value carrel")); out == "0" {
		t.Errorf("systemd reports no automatic restart (NRestarts=%s)", out)
	}
}

// dataDirElsewhere: the unit lets carrel write only /var/lib/carrel
// (ProtectSystem=strict) and hides home folders (ProtectHome=yes), so a
// data folder elsewhere needs a drop-in. For a folder under /srv and one
// under /home, neither made yet: the running service says the change
// waits for a restart, `carrel config check` warns and gives the fix, the
// restart fails and the journal gives it too, and following that hint
// word for word makes carrel run there. Then it goes back to
// /var/lib/carrel for the steps after.
func (s *systemdTest) dataDirElsewhere() {
	t := s.t
	cfgPath := s.path("/etc/carrel/carrel.toml")
	orig, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	const line = `data_dir = "/var/lib/carrel"`
	if !strings.Contains(string(orig), line) {
		t.Fatalf("the config has no line %s", line)
	}
	kept := len(s.bookings())
	old := s.mainPID()
	inUse := "/var/lib/carrel"
	for _, c := range []struct{ dir, failure string }{
		{"/srv/carrel", "read-only file system"},
		{"/home/lib/carrel", "permission denied"},
	} {
		old = s.moveDataDir(strings.Replace(string(orig), line, `data_dir = "`+c.dir+`"`, 1), inUse, c.dir, c.failure, old)
		inUse = c.dir
	}

	// Back to /var/lib/carrel, without the drop-in.
	s.writeConfig(string(orig))
	if err := os.Remove(s.path(dropInPath)); err != nil {
		t.Fatal(err)
	}
	s.run("systemctl daemon-reload && systemctl restart carrel")
	s.waitRunning(old)
	if st := s.status(); st.DataDir != "/var/lib/carrel" {
		t.Errorf("back on the shipped config carrel runs on %q", st.DataDir)
	}
	if n := len(s.bookings()); n != kept {
		t.Errorf("back on /var/lib/carrel carrel lists %d bookings; want the %d there before", n, kept)
	}
}

// dropInPath is where `systemctl edit carrel` writes its drop-in.
const dropInPath = "/etc/systemd/system/carrel.service.d/override.conf"

// moveDataDir rolls out config (which moves the data folder from inUse to
// dir, a folder not made yet), checks what carrel says, restarts, and
// follows carrel's hint. It returns the service's new main pid.
func (s *systemdTest) moveDataDir(config, inUse, dir, failure string, old int) int {
	t := s.t
	s.writeConfig(config)
	// The running service keeps its folder until it restarts, and says so.
	s.wait("status to say the data folder changes at the restart", func() (bool, string) {
		st := s.status()
		return st.DataDir == inUse && strings.Contains(strings.Join(st.Warnings, "\n"), "storage.data_dir changed to \""+dir+"\""),
			fmt.Sprintf("data_dir %s, warnings %q", st.DataDir, st.Warnings)
	})
	// config check: valid (exit 0), with a warning and the fix.
	if out, err := s.sh("root", "carrel config check 2>/dev/null"); err != nil || !strings.Contains(out, "valid") {
		t.Fatalf("carrel config check with data_dir %s: %v; want valid\n%s", dir, err, out)
	}
	out, _ := s.sh("root", "carrel config check 2>&1 >/dev/null")
	if !strings.HasPrefix(out, "warning: storage.data_dir: the installed unit") {
		t.Fatalf("carrel config check with data_dir %s does not warn:\n%s", dir, out)
	}
	install := regexp.MustCompile(`\((install -d -m 0700 [^)]+)\)`).FindStringSubmatch(out)
	at := strings.Index(out, "[Service]\n")
	if install == nil || at < 0 {
		t.Fatalf("carrel config check does not say to create %s and what drop-in to add:\n%s", dir, out)
	}
	dropIn := strings.TrimSpace(out[at:]) + "\n"
	t.Logf("carrel config check says:\n%s", out)

	// The restart fails, and the journal says why and what to do.
	s.run("systemctl restart carrel || true")
	s.wait("carrel to fail on "+dir+" and give the fix", func() (bool, string) {
		j := s.journal("-u carrel")
		return strings.Contains(j, failure) && strings.Contains(j, "hint: the systemd unit lets carrel write only") &&
			strings.Contains(j, "ReadWritePaths="+dir), j
	})

	// Carrel's hint, word for word: make the folder, add the drop-in.
	s.run(install[1])
	if err := os.MkdirAll(filepath.Dir(s.path(dropInPath)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.path(dropInPath), []byte(dropIn), 0o644); err != nil {
		t.Fatal(err)
	}
	s.run("systemctl daemon-reload && systemctl reset-failed carrel && systemctl restart carrel")
	old = s.waitRunning(old)
	if st := s.status(); st.DataDir != dir || len(st.Warnings) != 0 {
		t.Errorf("with the drop-in carrel runs on %q, warning %q; want %s and no warnings", st.DataDir, st.Warnings, dir)
	}
	if out := s.run("carrel config check 2>&1"); strings.Contains(out, "warning") {
		t.Errorf("carrel config check with the drop-in in place still warns:\n%s", out)
	}
	ref := "sysd-" + filepath.Base(filepath.Dir(dir))
	s.run("carrel booking start --ref " + ref + " && carrel booking end --ref " + ref)
	if _, err := os.Stat(s.path(filepath.Join(dir, "bookings.db"))); err != nil {
		t.Errorf("no register in %s: %v", dir, err)
	}
	return old
}

// upgrade installs the next version over the running one, as the README's
// Upgrade section says: the service restarts on the new version, the edited
// config, the data and the group stay.
func (s *systemdTest) upgrade(deb string) {
	t := s.t
	cfg, _ := os.ReadFile(s.path("/etc/carrel/carrel.toml"))
	gid := s.run("getent group carrel-booking")
	// The upgrade restarts the service cleanly: a booking open across it
	// stays open.
	s.run("carrel booking start --ref sysd-upgrade")
	before := s.bookings()
	old := s.mainPID()
	out := s.run("cd /root && " + aptInstall + deb)
	if !strings.Contains(out, "Unpacking carrel (0.9.2) over (0.9.1+git3.abc1234)") {
		t.Errorf("apt-get install did not upgrade carrel:\n%s", out)
	}
	s.waitRunning(old)
	if st := s.status(); st.Version != testVersion2.Describe {
		t.Errorf("after the upgrade the service reports version %q; want %s", st.Version, testVersion2.Describe)
	}
	if got, _ := os.ReadFile(s.path("/etc/carrel/carrel.toml")); string(got) != string(cfg) {
		t.Errorf("the upgrade changed the edited config:\n%s", got)
	}
	if g := s.run("getent group carrel-booking"); g != gid {
		t.Errorf("the upgrade changed the group: %q → %q", gid, g)
	}
	after := s.bookings()
	for ref := range before {
		if _, ok := after[ref]; !ok {
			t.Errorf("the upgrade lost booking %s", ref)
		}
	}
	if b := after["sysd-upgrade"]; b.Ended != "" {
		t.Errorf("the booking open across the upgrade is %+v; want it still open", b)
	}
	if out, err := s.sh("root", "carrel booking end --ref sysd-upgrade"); err != nil {
		t.Errorf("ending the booking after the upgrade: %v\n%s", err, out)
	}
}

// removeReinstallPurge follows the README's Uninstall section.
func (s *systemdTest) removeReinstallPurge(deb string) {
	t := s.t
	gid := s.run("getent group carrel-booking")
	kept := len(s.bookings())

	// remove: the service stops, the program and the unit go; the config,
	// the data folder and the group stay.
	s.run("DEBIAN_FRONTEND=noninteractive apt-get remove -y carrel")
	s.wantStopped()
	for _, p := range []string{"/usr/bin/carrel", "/lib/systemd/system/carrel.service"} {
		if _, err := os.Lstat(s.path(p)); err == nil {
			t.Errorf("apt-get remove left %s", p)
		}
	}
	for _, p := range []string{"/etc/carrel/carrel.toml", "/var/lib/carrel/bookings.db", "/var/lib/carrel/audit.db"} {
		if _, err := os.Stat(s.path(p)); err != nil {
			t.Errorf("apt-get remove took %s: %v", p, err)
		}
	}
	if g := s.run("getent group carrel-booking"); g != gid {
		t.Errorf("apt-get remove changed the group: %q → %q", gid, g)
	}

	// Installed again, carrel runs on the kept config and data.
	s.run("cd /root && " + aptInstall + deb)
	s.waitRunning(0)
	if n := len(s.bookings()); n != kept {
		t.Errorf("after remove and install carrel lists %d bookings; want the %d kept", n, kept)
	}
	if st := s.status(); st.Capture == nil || !strings.Contains(st.Config, "/etc/carrel/carrel.toml") || len(st.Capture.Cases) != 1 {
		t.Errorf("after remove and install the service does not run on the kept config: %+v", st)
	}

	// purge, unattended: the config goes, the data folder stays and the
	// output says so.
	out := s.run("DEBIAN_FRONTEND=noninteractive apt-get purge -y carrel 2>&1")
	if !strings.Contains(out, "kept /var/lib/carrel") {
		t.Errorf("apt-get purge does not say it kept the data folder:\n%s", out)
	}
	s.wantStopped()
	if _, err := os.Lstat(s.path("/etc/carrel")); err == nil {
		t.Errorf("apt-get purge left /etc/carrel")
	}
	if _, err := os.Stat(s.path("/var/lib/carrel/bookings.db")); err != nil {
		t.Errorf("an unattended purge deleted the data: %v", err)
	}
	if g := s.run("getent group carrel-booking"); g != gid {
		t.Errorf("apt-get purge changed the group: %q → %q", gid, g)
	}

	// Installed again, carrel runs on the kept data; purged with the
	// answer preseeded, the data folder goes too.
	s.run("cd /root && " + aptInstall + deb)
	s.waitRunning(0)
	if n := len(s.bookings()); n != kept {
		t.Errorf("after purge and install carrel lists %d bookings; want the %d kept", n, kept)
	}
	s.run("echo carrel carrel/purge_data boolean true | debconf-set-selections && DEBIAN_FRONTEND=noninteractive apt-get purge -y carrel")
	s.wantStopped()
	for _, p := range []string{"/var/lib/carrel", "/etc/carrel"} {
		if _, err := os.Lstat(s.path(p)); err == nil {
			t.Errorf("the preseeded purge left %s", p)
		}
	}
}

// wantStopped checks that systemd has no carrel service running and no
// carrel process is left in the container.
func (s *systemdTest) wantStopped() {
	s.t.Helper()
	if out, _ := s.sh("root", "systemctl is-active carrel"); strings.TrimSpace(out) != "inactive" {
		s.t.Errorf("systemctl is-active carrel = %q; want inactive", strings.TrimSpace(out))
	}
	if out, _ := s.sh("root", "grep -lx carrel /proc/[0-9]*/comm"); strings.TrimSpace(out) != "" {
		s.t.Errorf("carrel processes still run: %s", out)
	}
}

// mainPID is the service's main process in the container's pid namespace.
func (s *systemdTest) mainPID() int {
	s.t.Helper()
	out := s.run("systemctl show -p MainPID --value carrel")
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || pid == 0 {
		s.t.Fatalf("carrel has no main process (MainPID=%q)", out)
	}
	return pid
}

// waitRunning waits until the service runs with a main process other than
// old and answers on its API; it returns the new main pid.
func (s *systemdTest) waitRunning(old int) int {
	s.t.Helper()
	var pid int
	s.wait(fmt.Sprintf("carrel to run (main pid other than %d) and answer", old), func() (bool, string) {
		out, _ := s.sh("root", "systemctl show -p ActiveState -p SubState -p MainPID carrel; carrel status --json >/dev/null && echo API=up")
		f := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				f[k] = v
			}
		}
		pid, _ = strconv.Atoi(f["MainPID"])
		return f["ActiveState"] == "active" && f["SubState"] == "running" && pid != 0 && pid != old && f["API"] == "up", out
	})
	return pid
}

// status is `carrel status --json`, as root.
func (s *systemdTest) status() api.Status {
	s.t.Helper()
	var st api.Status
	if err := json.Unmarshal(s.stdout("root", "carrel status --json"), &st); err != nil {
		s.t.Fatalf("carrel status --json: %v", err)
	}
	return st
}

// bookings is `carrel booking list --format json`, as root, by reference.
func (s *systemdTest) bookings() map[string]api.Booking {
	s.t.Helper()
	var bs []api.Booking
	if err := json.Unmarshal(s.stdout("root", "carrel booking list --format json"), &bs); err != nil {
		s.t.Fatalf("carrel booking list --format json: %v", err)
	}
	m := map[string]api.Booking{}
	for _, b := range bs {
		m[b.Ref] = b
	}
	return m
}

// auditEntry is an entry as `carrel audit list --json` prints it.
type auditEntry struct {
	Seq    int64             `json:"seq"`
	Time   time.Time         `json:"time"`
	Kind   string            `json:"kind"`
	Fields map[string]string `json:"fields"`
}

// audit is `carrel audit list --json` of the given kinds (comma-separated)
// and field (KEY=VALUE, or ""), as root.
func (s *systemdTest) audit(kinds, field string) []auditEntry {
	s.t.Helper()
	cmd := "carrel audit list --json --kind " + kinds
	if field != "" {
		cmd += " --field " + field
	}
	var es []auditEntry
	dec := json.NewDecoder(bytes.NewReader(s.stdout("root", cmd)))
	for dec.More() {
		var e auditEntry
		if err := dec.Decode(&e); err != nil {
			s.t.Fatalf("%s: %v", cmd, err)
		}
		es = append(es, e)
	}
	return es
}

// journal is journalctl's message text for the given match.
func (s *systemdTest) journal(match string) string {
	out, _ := s.sh("root", "journalctl --no-pager -o cat "+match)
	return out
}

// runLog is what one run of carrel (main pid) logged, from its start
// through "carrel started": recovery from the previous stop is logged
// before it.
func (s *systemdTest) runLog(pid int) string {
	s.t.Helper()
	var log string
	s.wait(fmt.Sprintf("the journal to hold the start of carrel's run %d", pid), func() (bool, string) {
		log = s.journal("_PID=" + strconv.Itoa(pid))
		return strings.Contains(log, "carrel started"), log
	})
	return log
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }
