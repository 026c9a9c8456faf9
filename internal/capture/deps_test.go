package capture

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// G3: capture knows nothing of bookings, of sealing, of the audit log or
// of the export; the daemon wires it to the sink. And it links no libpcap
// on Linux (afpacket and pcapgo are pure Go).
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
			if goos == "linux" && dep == "github.com/gopacket/gopacket/pcap" {
				t.Errorf("capture links gopacket/pcap (libpcap) on Linux; it must use afpacket")
			}
		}
		if goos == "windows" && !strings.Contains(string(out), "github.com/gopacket/gopacket/pcap\n") {
			t.Errorf("on Windows capture does not use gopacket/pcap (Npcap)")
		}
	}
}
