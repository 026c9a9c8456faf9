package capture

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// G3: capture knows nothing of bookings, of sealing, of the audit log or
// of the export; the daemon wires it to the sink. And it links no libpcap
// on Linux (afpacket and pcapgo are pure Go), and no gopacket/pcap on
// Windows, whose init loads wpcap.dll when carrel starts and panics when
// the DLL lacks a function it binds (npcap.go): carrel binds Npcap itself,
// when capture starts.
func TestCaptureImports(t *testing.T) {
	gobin := testenv.NeedTool(t, "go")
	for _, goos := range []string{"linux", "windows"} {
		cmd := exec.Command(gobin, "list", "-deps", "github.com/carrel-lib/carrel/internal/capture")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GOOS=%s go list: %v: %s", goos, err, out)
		}
		deps := strings.Fields(string(out))
		for _, dep := range deps {
			for _, banned := range []string{"/internal/booking", "/internal/seal", "/internal/audit", "/internal/export"} {
				if strings.HasSuffix(dep, banned) || strings.Contains(dep, banned+"/") {
					t.Errorf("GOOS=%s: capture depends on %s", goos, dep)
				}
			}
		}
		cmd = exec.Command(gobin, "list", "-deps", "github.com/carrel-lib/carrel/cmd/carrel")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos)
		out, err = cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GOOS=%s go list: %v: %s", goos, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == "github.com/gopacket/gopacket/pcap" {
				t.Errorf("GOOS=%s: carrel links gopacket/pcap; Linux captures with afpacket, Windows binds Npcap itself (npcap_windows.go)", goos)
			}
		}
	}
}
