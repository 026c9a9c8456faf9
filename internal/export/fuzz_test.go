package export

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// A fuzz input is a bag packed as "<path>\n<length>\n<bytes>" per file:
// unlike txtar it carries binary files (sealed segments) unchanged.
func packBag(files map[string][]byte) []byte {
	var b bytes.Buffer
	for _, p := range sortedKeys(files) {
		fmt.Fprintf(&b, "%s\n%d\n", p, len(files[p]))
		b.Write(files[p])
	}
	return b.Bytes()
}

// archiveFS unpacks a packed bag; what cannot be read is dropped.
func archiveFS(b []byte) fstest.MapFS {
	fsys := fstest.MapFS{}
	for len(b) > 0 {
		name, rest, ok := bytes.Cut(b, []byte("\n"))
		if !ok {
			break
		}
		size, rest, ok := bytes.Cut(rest, []byte("\n"))
		n, err := strconv.Atoi(string(size))
		if !ok || err != nil || n < 0 || n > len(rest) {
			break
		}
		fsys[string(name)] = &fstest.MapFile{Data: rest[:n], Mode: 0o600}
		b = rest[n:]
	}
	return fsys
}

// FuzzVerify feeds the bag reader and verifier arbitrary bags. Property:
// it never panics, and a bag it accepts really is complete and intact —
// every file under data/ is listed in manifest-sha256.txt with its digest
// (checked here independently of the package), and every listed path is a
// file of the bag.
func FuzzVerify(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, packed []byte) {
		fsys := archiveFS(packed)
		rep, err := Verify(fsys, VerifyOptions{})
		if err != nil {
			return
		}
		manifest := string(fsys["manifest-sha256.txt"].Data)
		n := 0
		for name, file := range fsys {
			if !strings.HasPrefix(name, "data/") {
				continue
			}
			n++
			sum := sha256.Sum256(file.Data)
			if !strings.Contains(manifest, fmt.Sprintf("%x  %s\n", sum, name)) {
				t.Fatalf("Verify accepted a bag whose %s is not in manifest-sha256.txt with its digest", name)
			}
		}
		if rep.Files != n {
			t.Fatalf("Verify reported %d payload files; the bag has %d", rep.Files, n)
		}
	})
}

// FuzzVerifyRemanifested replaces one file of a real bag with fuzzed
// bytes and rewrites the manifests, as a forger would. Properties: it
// never panics; Verify accepts the bag only when the file is byte for byte
// the original (the signature vouches for the tag manifest, and so for
// everything); and the checks behind the signature, which a forger holding
// a key would face (carrel's audit entries and proofs, checkpoint,
// custody.json, sealed segments), accept a replaced audit entry, proof,
// checkpoint or sealed segment only when it is the original.
func FuzzVerifyRemanifested(f *testing.F) {
	seeds := fuzzSeeds(f)
	f.Add(uint8(0), uint8(0), []byte("carrel audit entry v1\nseq 1\n"))
	f.Add(uint8(1), uint8(7), []byte("{\"format\": \"carrel custody v1\"}"))
	f.Add(uint8(1), uint8(30), []byte("carrel audit inclusion v1\nseq 1\nsize 2\n"))
	f.Fuzz(func(t *testing.T, seed, which uint8, data []byte) {
		if len(seeds) == 0 {
			t.Skip("no seed bags")
		}
		fsys := archiveFS(seeds[int(seed)%len(seeds)])
		var payload []string
		for _, p := range sortedKeys(fsys) {
			if strings.HasPrefix(p, "data/") {
				payload = append(payload, p)
			}
		}
		target := payload[int(which)%len(payload)]
		original := fsys[target].Data
		fsys[target] = &fstest.MapFile{Data: data, Mode: 0o600}
		rewriteManifests(fsys)
		same := bytes.Equal(data, original)
		if _, err := Verify(fsys, VerifyOptions{}); err == nil && !same {
			t.Fatalf("Verify accepted a changed %s", target)
		}
		bag, err := ReadBag(fsys)
		if err != nil {
			return
		}
		_, err = verifyBag(fsys, bag, VerifyOptions{}, false)
		guarded := strings.HasPrefix(target, auditDir+"/") || strings.HasSuffix(target, ".age")
		if err == nil && guarded && !same {
			t.Fatalf("the checks behind the signature accepted a changed %s", target)
		}
	})
}

// rewriteManifests recomputes Payload-Oxum and every manifest of fsys.
func rewriteManifests(fsys fstest.MapFS) {
	var payload, tags []fileSum
	var n int64
	for _, p := range sortedKeys(fsys) {
		s256, s512 := sha256.Sum256(fsys[p].Data), sha512.Sum512(fsys[p].Data)
		sum := fileSum{Path: p, Size: int64(len(fsys[p].Data)), SHA256: s256[:], SHA512: s512[:]}
		if strings.HasPrefix(p, "data/") {
			payload = append(payload, sum)
			n += sum.Size
		}
	}
	info := oxumLine.ReplaceAll(fsys["bag-info.txt"].Data, fmt.Appendf(nil, "Payload-Oxum: %d.%d", n, len(payload)))
	fsys["bag-info.txt"] = &fstest.MapFile{Data: info, Mode: 0o600}
	for _, alg := range algorithms {
		fsys["manifest-"+alg+".txt"] = &fstest.MapFile{Data: encodeManifest(lines(payload, alg)), Mode: 0o600}
	}
	for _, p := range []string{"bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt"} {
		s256, s512 := sha256.Sum256(fsys[p].Data), sha512.Sum512(fsys[p].Data)
		tags = append(tags, fileSum{Path: p, SHA256: s256[:], SHA512: s512[:]})
	}
	for _, alg := range algorithms {
		fsys["tagmanifest-"+alg+".txt"] = &fstest.MapFile{Data: encodeManifest(lines(tags, alg)), Mode: 0o600}
	}
}

var oxumLine = regexp.MustCompile(`(?m)^Payload-Oxum: .*$`)

// FuzzParseManifest: whatever parseManifest accepts, encodeManifest writes
// back into something it reads as the same lines, and no accepted path
// leaves the bag.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  data/a.txt\n"))
	f.Add([]byte("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 *data/%0Aodd%25name\r\n"))
	f.Add([]byte("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  ../etc/passwd\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lines, err := parseManifest(b, 32)
		if err != nil {
			return
		}
		for _, l := range lines {
			if checkPath(l.Path) != nil || strings.HasPrefix(l.Path, "../") || filepath.IsAbs(l.Path) {
				t.Fatalf("accepted path %q", l.Path)
			}
		}
		again, err := parseManifest(encodeManifest(lines), 32)
		if err != nil || len(again) != len(lines) {
			t.Fatalf("re-reading the encoding: %d lines, %v; want %d", len(again), err, len(lines))
		}
		want := map[string][]byte{}
		for _, l := range lines {
			want[l.Path] = l.Sum
		}
		for _, l := range again {
			if !bytes.Equal(want[l.Path], l.Sum) {
				t.Fatalf("round trip changed %q", l.Path)
			}
		}
	})
}

// FuzzParseBagInfo: parsing never panics, and an accepted bag-info.txt
// written back out reads as the same fields.
func FuzzParseBagInfo(f *testing.F) {
	f.Add([]byte("Source-Organization: Test Library\nPayload-Oxum: 12.3\n"))
	f.Add([]byte("External-Description: a long\n  folded value\r\nX: y\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := parseBagInfo(b)
		if err != nil {
			return
		}
		again, err := parseBagInfo(encodeBagInfo(fs))
		if err != nil || len(again) != len(fs) {
			t.Fatalf("re-reading %q: %v, %d fields; want %d", encodeBagInfo(fs), err, len(again), len(fs))
		}
		for i := range fs {
			if fs[i] != again[i] {
				t.Fatalf("round trip changed %+v into %+v", fs[i], again[i])
			}
		}
	})
}

// fuzzSeeds are the committed corpus of FuzzVerify: packed real bundles,
// written by TestFuzzSeeds -update from exports of the fixture.
func fuzzSeeds(tb testing.TB) [][]byte {
	paths, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzVerify", "*"))
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		// go test fuzz v1\n[]byte("…")\n
		_, lit, ok := strings.Cut(string(b), "[]byte(")
		if !ok {
			tb.Fatalf("%s is not a fuzz corpus file", p)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimSpace(lit), ")"))
		if err != nil {
			tb.Fatalf("%s: %v", p, err)
		}
		out = append(out, []byte(s))
	}
	return out
}

// TestFuzzSeeds keeps the seed bags real: each must verify as it is. With
// -update it writes them afresh from exports of the fixture (a bag with
// traffic and one without), and the Go fuzz corpus files beside them.
func TestFuzzSeeds(t *testing.T) {
	if *update {
		writeSeeds(t)
	}
	seeds := fuzzSeeds(t)
	if len(seeds) < 2 {
		t.Fatalf("%d seed bags in testdata/fuzz/FuzzVerify; run go test -run TestFuzzSeeds -update", len(seeds))
	}
	for i, s := range seeds {
		if _, err := Verify(archiveFS(s), VerifyOptions{}); err != nil {
			t.Errorf("seed %d does not verify: %v", i, err)
		}
	}
}

func writeSeeds(t *testing.T) {
	t.Helper()
	corpus := filepath.Join("testdata", "fuzz", "FuzzVerify")
	os.RemoveAll(corpus)
	if err := os.MkdirAll(corpus, 0o755); err != nil {
		t.Fatal(err)
	}
	bags := map[string]string{}
	bags["with-traffic"], _ = bundle(t)
	f := newFixture(t, "")
	f.book("pc-01", "B-1", "09:30", "10:15", "")
	f.set(at("15:00"))
	o := f.options(filepath.Join(f.root, "bundle"))
	if _, err := f.export(o); err != nil {
		t.Fatal(err)
	}
	bags["bookings-only"] = o.Out
	for name, bag := range bags {
		b := packBag(readTree(t, bag))
		entry := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(corpus, name), []byte(entry), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
