package export

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// run runs a program in dir and returns its standard output.
func run(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// TestBundleWithStandardTools checks the bundle with the tools a court has
// without carrel: sha256sum and sha512sum accept the manifests and tag
// manifests as written, Debian's age CLI decrypts every sealed segment to
// the plaintext that carrel restricted (every exported line or packet is in
// it), and tshark and capinfos read the decrypted pcapng.
func TestBundleWithStandardTools(t *testing.T) {
	testenv.NeedTool(t, "sha256sum", "sha512sum", "age", "tshark", "capinfos")
	dir, identity := bundle(t)

	for _, m := range []string{"manifest-sha256.txt", "tagmanifest-sha256.txt"} {
		out := run(t, dir, "sha256sum", "--strict", "-c", m)
		if bytes.Contains(out, []byte("FAILED")) || len(bytes.Split(bytes.TrimSpace(out), []byte("\n"))) < 3 {
			t.Errorf("sha256sum -c %s:\n%s", m, out)
		}
	}
	for _, m := range []string{"manifest-sha512.txt", "tagmanifest-sha512.txt"} {
		run(t, dir, "sha512sum", "--strict", "-c", m)
	}
	// And they do fail on a changed file: the check above can fail.
	flipByte(t, dir, bookingsCSV, 10)
	if err := exec.Command("sh", "-c", "cd "+dir+" && sha256sum --quiet -c manifest-sha256.txt").Run(); err == nil {
		t.Error("sha256sum -c accepted a changed bookings.csv")
	}

	files := readTree(t, dir)
	ids := loadIDs(t, identity)
	segments := 0
	for _, p := range sortedKeys(files) {
		if !strings.HasSuffix(p, ".age") {
			continue
		}
		segments++
		cli := run(t, dir, "age", "-d", "-i", identity, p)
		r, err := age.Decrypt(bytes.NewReader(files[p]), ids...)
		if err != nil {
			t.Fatal(err)
		}
		var lib bytes.Buffer
		if _, err := lib.ReadFrom(r); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(cli, lib.Bytes()) {
			t.Errorf("age -d %s gives %d bytes, carrel's age library %d", p, len(cli), lib.Len())
		}
		plain := strings.TrimSuffix(p, ".age")
		if strings.HasSuffix(plain, ".jsonl") {
			for _, line := range bytes.SplitAfter(files[plain], []byte("\n")) {
				if len(line) > 0 && !bytes.Contains(cli, line) {
					t.Errorf("%s holds a line that is not in age -d %s: %s", plain, p, line)
				}
			}
			continue
		}
		full := filepath.Join(t.TempDir(), "full.pcapng")
		os.WriteFile(full, cli, 0o600)
		all := run(t, dir, "tshark", "-r", full, "-T", "fields", "-e", "frame.time_epoch", "-e", "udp.srcport")
		got := run(t, dir, "tshark", "-r", plain, "-T", "fields", "-e", "frame.time_epoch", "-e", "udp.srcport")
		if n := bytes.Count(got, []byte("\n")); n != 2 || !bytes.HasPrefix(all, got) {
			t.Errorf("tshark on %s:\n%s\nwant the first 2 packets of the sealed segment:\n%s", plain, got, all)
		}
		info := run(t, dir, "capinfos", "-c", "-M", plain)
		if !bytes.Contains(info, []byte("Number of packets:   2")) {
			t.Errorf("capinfos %s:\n%s", plain, info)
		}
	}
	if segments != 3 {
		t.Errorf("found %d sealed segments; want 3", segments)
	}
}

// TestExportRunsBesideService: the fixture keeps the audit log, the
// booking register and the traffic store open (and the traffic folder's
// lock held), as the running service does; the export still records its
// entries, places its hold, and `traffic release` lifts it.
func TestExportRunsBesideService(t *testing.T) {
	f := standard(t)
	f.sealStore() // holds traffic.lock like the service
	out := filepath.Join(f.root, "bundle")
	res, err := f.export(f.options(out))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	segs, err := f.store.Segments(ctx, sealFilterAll())
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, s := range segs {
		if len(s.Holds) > 0 {
			held++
			if s.Holds[0] != "RET-2026-0042" {
				t.Errorf("segment %s held by %v; want the order", s.Name, s.Holds)
			}
		}
	}
	if held != 3 {
		t.Errorf("%d segments on hold; want the 3 exported", held)
	}
	if n, err := f.store.Release(ctx, "RET-2026-0042"); err != nil || n != 3 {
		t.Errorf("Release = %d, %v; want 3, nil", n, err)
	}
	// export.end carries the tag manifest's digest and a checkpoint covers it.
	end, err := f.log.Entry(ctx, res.EndSeq)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := os.ReadFile(filepath.Join(out, "tagmanifest-sha256.txt"))
	if v, _ := end.Value("tagmanifest_sha256"); end.Kind != "export.end" || v != sha256hex(tag) || v != res.TagSHA256 {
		t.Errorf("export.end = %+v; want tagmanifest_sha256 %s", end, sha256hex(tag))
	}
	rep, err := VerifyDir(out, VerifyOptions{})
	if err != nil || rep.TagSHA256 != res.TagSHA256 {
		t.Errorf("VerifyDir = %v, tag manifest SHA-256 %q; want %s, the one export.end carries", err, rep.TagSHA256, res.TagSHA256)
	}
	cp, err := f.log.Latest(ctx)
	if err != nil || cp.Size <= res.EndSeq {
		t.Errorf("latest checkpoint %v, %v; want one covering export.end (seq %d)", cp, err, res.EndSeq)
	}
}
