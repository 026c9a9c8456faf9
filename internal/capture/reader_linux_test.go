package capture

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// TestLinkTypesAsTshark: tshark reads the same names from the same files,
// so the files are what those link types really look like.
func TestLinkTypesAsTshark(t *testing.T) {
	testenv.NeedTool(t, "tshark")
	dir := t.TempDir()
	for name, file := range linkFiles(t) {
		path := filepath.Join(dir, name+".pcap")
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		var ts []string
		for _, f := range []string{"dns.qry.name", "tls.handshake.extensions_server_name"} {
			ts = append(ts, tsharkFields(t, path, f)...)
		}
		got := decodeNames(t, file)
		for i := range got {
			_, got[i], _ = strings.Cut(got[i], " ")
		}
		if !slices.Equal(got, ts) {
			t.Errorf("%s: carrel read %q, tshark %q", name, got, ts)
		}
	}
}
