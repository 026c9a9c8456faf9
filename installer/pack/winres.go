package pack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Windres is the resource compiler of mingw-w64 (Debian
// binutils-mingw-w64-x86-64, which gcc-mingw-w64-x86-64 pulls in).
var Windres = "x86_64-w64-mingw32-windres"

// VersionResource compiles carrel.exe's version information (what
// Explorer's Details tab and Get-Item's VersionInfo show, and what
// inventory tools read) into the COFF object out. `make windows` links it
// into carrel.exe through -extldflags.
func VersionResource(v Version, out string) error {
	dir, err := os.MkdirTemp("", "carrel-res-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rc := filepath.Join(dir, "carrel.rc")
	if err := os.WriteFile(rc, versionRC(v), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if b, err := exec.Command(Windres, "-O", "coff", "-i", rc, "-o", out).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", Windres, err, b)
	}
	return nil
}

// versionRC is the resource script. Numbers rather than winver.h names,
// so that it needs no headers: 0x3f VS_FFI_FILEFLAGSMASK, 0x40004
// VOS_NT_WINDOWS32, 1 VFT_APP; the block 040904b0 is US English, Unicode.
func versionRC(v Version) []byte {
	q := v.Quad()
	nums := fmt.Sprintf("%d,%d,%d,%d", q[0], q[1], q[2], q[3])
	text := rcString(v.Describe)
	var b strings.Builder
	fmt.Fprintf(&b, "1 VERSIONINFO\nFILEVERSION %s\nPRODUCTVERSION %s\n", nums, nums)
	b.WriteString("FILEFLAGSMASK 0x3f\nFILEFLAGS 0\nFILEOS 0x40004\nFILETYPE 1\nFILESUBTYPE 0\nBEGIN\n")
	b.WriteString("  BLOCK \"StringFileInfo\"\n  BEGIN\n    BLOCK \"040904b0\"\n    BEGIN\n")
	for _, kv := range [][2]string{
		{"CompanyName", "carrel"},
		{"FileDescription", "carrel: booking-time register for public library PCs"},
		{"FileVersion", text},
		{"InternalName", "carrel"},
		{"LegalCopyright", "the carrel authors"},
		{"OriginalFilename", "carrel.exe"},
		{"ProductName", "carrel"},
		{"ProductVersion", text},
	} {
		fmt.Fprintf(&b, "      VALUE \"%s\", \"%s\"\n", kv[0], kv[1])
	}
	b.WriteString("    END\n  END\n  BLOCK \"VarFileInfo\"\n  BEGIN\n    VALUE \"Translation\", 0x409, 1200\n  END\nEND\n")
	return []byte(b.String())
}

// rcString keeps printable ASCII and escapes what a resource script string
// treats specially.
func rcString(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`""`)
		case r == '\\':
			b.WriteString(`\\`)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		}
	}
	return b.String()
}
