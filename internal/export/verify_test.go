package export

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
)

// exported is one bundle of the standard fixture, made once and copied for
// each test that changes it.
var exported struct {
	once     sync.Once
	dir      string
	identity string
	err      error
}

func bundle(t *testing.T) (dir, identity string) {
	t.Helper()
	exported.once.Do(func() {
		tmp, err := os.MkdirTemp("", "carrel-export-test-")
		if err != nil {
			exported.err = err
			return
		}
		exported.dir = filepath.Join(tmp, "bundle")
		exported.identity = filepath.Join(tmp, "key")
	})
	if exported.err != nil {
		t.Fatal(exported.err)
	}
	if _, err := os.Stat(exported.dir); err != nil {
		f := standard(t)
		if _, err := f.export(f.options(exported.dir)); err != nil {
			t.Fatal(err)
		}
		key, err := os.ReadFile(f.identity)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exported.identity, key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join(t.TempDir(), "bundle")
	copyTree(t, exported.dir, dir)
	return dir, exported.identity
}

func TestMain(m *testing.M) {
	if root := os.Getenv(killChildEnv); root != "" {
		os.Exit(killChild(root, os.Getenv(killStepEnv)))
	}
	code := m.Run()
	if exported.dir != "" {
		os.RemoveAll(filepath.Dir(exported.dir))
	}
	os.Exit(code)
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	for p, b := range readTree(t, from) {
		full := filepath.Join(to, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// remanifest rewrites Payload-Oxum and every manifest and tag manifest from
// the files as they are now: what someone who altered the bag and wanted it
// to pass a plain BagIt validator would do. Written independently of the
// package's bag writer. Like carrel, it leaves the signature out of the
// tag manifests.
func remanifest(t *testing.T, dir string) {
	t.Helper()
	remanifestWith(t, dir, false)
}

func remanifestWith(t *testing.T, dir string, listSignature bool) {
	t.Helper()
	files := readTree(t, dir)
	if !listSignature {
		for p := range files {
			if strings.HasPrefix(p, "signature/") {
				delete(files, p)
			}
		}
	}
	var n int64
	var count int
	for p, b := range files {
		if strings.HasPrefix(p, "data/") {
			n += int64(len(b))
			count++
		}
	}
	info := regexp.MustCompile(`(?m)^Payload-Oxum: .*$`).ReplaceAllString(string(files["bag-info.txt"]), fmt.Sprintf("Payload-Oxum: %d.%d", n, count))
	write(t, dir, "bag-info.txt", info)
	files["bag-info.txt"] = []byte(info)
	manifest := func(tag bool, sum func([]byte) string) string {
		var lines []string
		for _, p := range sortedKeys(files) {
			if strings.HasPrefix(p, "data/") != tag && !strings.HasPrefix(p, "tagmanifest-") {
				lines = append(lines, sum(files[p])+"  "+p+"\n")
			}
		}
		return strings.Join(lines, "")
	}
	s256 := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	s512 := func(b []byte) string { s := sha512.Sum512(b); return hex.EncodeToString(s[:]) }
	for name, sum := range map[string]func([]byte) string{"sha256": s256, "sha512": s512} {
		m := manifest(false, sum)
		write(t, dir, "manifest-"+name+".txt", m)
		files["manifest-"+name+".txt"] = []byte(m)
	}
	for name, sum := range map[string]func([]byte) string{"sha256": s256, "sha512": s512} {
		write(t, dir, "tagmanifest-"+name+".txt", manifest(true, sum))
	}
}

func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	full := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, dir, rel string, at int) {
	t.Helper()
	full := filepath.Join(dir, filepath.FromSlash(rel))
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at += len(b)
	}
	b[at] ^= 0x20
	if err := os.WriteFile(full, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func firstFile(t *testing.T, dir, suffix string) string {
	t.Helper()
	for _, p := range sortedKeys(readTree(t, dir)) {
		if strings.HasSuffix(p, suffix) {
			return p
		}
	}
	t.Fatalf("no file ending in %s", suffix)
	return ""
}

// TestVerifyTampered changes an exported bundle in one way each and checks
// that Verify fails naming the right problem. The "consistent" cases also
// rewrite every manifest, as a forger would: only carrel's own checks
// (audit proofs, segment.sealed entries, decrypted content) catch those.
func TestVerifyTampered(t *testing.T) {
	jsonlFile := "data/traffic/2026-03-20260302T110000.000Z-00000002.jsonl"
	ageFile := jsonlFile + ".age"
	// What the signature says of a bag whose manifests were rewritten.
	const changed = "signature/export-end.entry: the export.end entry the PC's audit key signed records tagmanifest_sha256 "
	tests := []struct {
		name     string
		tamper   func(t *testing.T, dir string)
		identity bool
		want     string // in the error
		// deeper, when set, is what the checks behind the signature say
		// (verifyBag without it), as they would of a bag re-signed by
		// someone holding a key; "-" when they pass, so that only the
		// signature catches the change.
		deeper string
	}{
		{"payload byte", func(t *testing.T, dir string) { flipByte(t, dir, bookingsCSV, 40) }, false,
			"data/bookings.csv: SHA256 is", ""},
		{"sealed segment byte", func(t *testing.T, dir string) { flipByte(t, dir, ageFile, -5) }, false,
			ageFile + ": SHA256 is", ""},
		{"bag-info.txt byte", func(t *testing.T, dir string) { flipByte(t, dir, "bag-info.txt", 30) }, false,
			"bag-info.txt: SHA256 is", ""},
		{"removed payload file", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, bookingsCSV)) }, false,
			"data/bookings.csv: listed in manifest-sha256.txt but missing", ""},
		{"removed tag file", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "manifest-sha512.txt")) }, false,
			"manifest-sha512.txt: missing", ""},
		{"added payload file", func(t *testing.T, dir string) { write(t, dir, "data/notes.txt", "x") }, false,
			"data/notes.txt: not listed in manifest-sha256.txt", ""},
		{"added tag file", func(t *testing.T, dir string) { write(t, dir, "extra.txt", "x") }, false,
			"extra.txt: not listed in tagmanifest-sha256.txt", ""},
		{"altered inclusion proof", func(t *testing.T, dir string) { flipByte(t, dir, firstFile(t, dir, ".proof"), -3) }, false,
			".proof: SHA256 is", ""},
		{"altered inclusion proof, consistent", func(t *testing.T, dir string) {
			flipByte(t, dir, firstFile(t, dir, ".proof"), -3)
			remanifest(t, dir)
		}, false, changed, "inclusion proof does not verify"},
		{"altered entry, consistent", func(t *testing.T, dir string) {
			p := firstFile(t, dir, "000000000004.entry")
			b, _ := os.ReadFile(filepath.Join(dir, p))
			write(t, dir, p, strings.Replace(string(b), "records int 4", "records int 5", 1))
			remanifest(t, dir)
		}, false, changed, "000000000004.entry: its inclusion proof does not verify"},
		{"removed proof, consistent", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "data/audit/entries/000000000012.proof"))
			remanifest(t, dir)
		}, false, changed, "000000000012.entry: no inclusion proof"},
		{"other checkpoint, consistent", func(t *testing.T, dir string) {
			flipByte(t, dir, checkpointFile, 20)
			remanifest(t, dir)
		}, false, changed, "data/audit/checkpoint: not a checkpoint signed"},
		{"window widened in bag-info.txt, consistent", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "bag-info.txt"))
			write(t, dir, "bag-info.txt", strings.Replace(string(b), "Carrel-Window-To: 2026-03-02T12:00:00Z", "Carrel-Window-To: 2026-03-02T13:00:00Z", 1))
			remanifest(t, dir)
		}, false, changed, "export.start was for the window"},
		{"other order in bag-info.txt, consistent", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "bag-info.txt"))
			write(t, dir, "bag-info.txt", strings.Replace(string(b), "RET-2026-0042", "RET-2026-0043", 1))
			remanifest(t, dir)
		}, false, "signature/export-end.entry: the export.end entry the PC's audit key signed records", `no export.start entry for the order "RET-2026-0043"`},
		{"resealed segment, consistent", func(t *testing.T, dir string) {
			// Anyone with the public key can seal new content: the
			// segment.sealed entry's digest is what gives it away.
			id, _ := age.GenerateX25519Identity()
			var buf bytes.Buffer
			w, _ := age.Encrypt(&buf, id.Recipient())
			w.Write([]byte("{}\n"))
			w.Close()
			write(t, dir, ageFile, buf.String())
			remanifest(t, dir)
		}, false, changed, ageFile + ": "},
		{"decrypted record removed, consistent", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, jsonlFile))
			lines := strings.SplitAfter(string(b), "\n")
			write(t, dir, jsonlFile, lines[0])
			remanifest(t, dir)
		}, true, changed, "data/custody.json: gives " + jsonlFile},
		{"decrypted record removed, custody rewritten, consistent", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, jsonlFile))
			lines := strings.SplitAfter(string(b), "\n")
			write(t, dir, jsonlFile, lines[0])
			c, _ := os.ReadFile(filepath.Join(dir, custodyFile))
			old := sha256.Sum256(b)
			now := sha256.Sum256([]byte(lines[0]))
			c = bytes.Replace(c, []byte(hex.EncodeToString(old[:])), []byte(hex.EncodeToString(now[:])), 1)
			c = bytes.Replace(c, []byte(fmt.Sprintf(`"size": %d`, len(b))), []byte(fmt.Sprintf(`"size": %d`, len(lines[0]))), 1)
			write(t, dir, custodyFile, string(c))
			remanifest(t, dir)
		}, true, changed, jsonlFile + ": is not the content of"},
		{"other order in custody.json, consistent", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, custodyFile))
			write(t, dir, custodyFile, strings.Replace(string(b), `"ref": "RET-2026-0042"`, `"ref": "RET-2026-0043"`, 1))
			remanifest(t, dir)
		}, false, changed, `data/custody.json: names the order "RET-2026-0043"`},
		{"decrypted file missing, consistent", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, strings.TrimSuffix(jsonlFile, ".jsonl")+".csv"))
			remanifest(t, dir)
		}, false, changed, ".csv: missing: the decrypted content of"},
		{"path escaping data/ in a manifest", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "manifest-sha256.txt"))
			write(t, dir, "manifest-sha256.txt", string(b)+strings.Repeat("0", 64)+"  data/../../etc/passwd\n")
		}, false, "not a clean path inside the bag", ""},
		{"symbolic link in the payload", func(t *testing.T, dir string) {
			if err := os.Symlink("/etc/passwd", filepath.Join(dir, "data", "passwd")); err != nil {
				t.Fatal(err)
			}
		}, false, "data/passwd", ""},
		{"unknown file under data/, consistent", func(t *testing.T, dir string) {
			write(t, dir, "data/extra/notes.txt", "x")
			remanifest(t, dir)
		}, false, changed, "data/extra/notes.txt: not a file a carrel export writes"},
		// Issue 10, item 5: changes that only the signature catches.
		{"bookings row removed, consistent", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, bookingsCSV))
			lines := strings.SplitAfter(string(b), "\n")
			write(t, dir, bookingsCSV, lines[0]+strings.Join(lines[2:], ""))
			remanifest(t, dir)
		}, false, changed, "-"},
		{"segment removed with its audit entry and custody line, consistent", func(t *testing.T, dir string) {
			removeSegment(t, dir, "2026-03-20260302T110000.000Z-00000002.jsonl")
			remanifest(t, dir)
		}, false, changed, "-"},
		{"signature removed", func(t *testing.T, dir string) {
			os.RemoveAll(filepath.Join(dir, "signature"))
		}, false, "signature/: missing: the bundle was never signed", ""},
		{"signature removed, consistent", func(t *testing.T, dir string) {
			os.RemoveAll(filepath.Join(dir, "signature"))
			flipByte(t, dir, bookingsCSV, 40)
			remanifest(t, dir)
		}, false, "signature/: missing: the bundle was never signed", ""},
		{"signature proof removed", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, sigProofFile)) }, false,
			"signature/export-end.proof: missing: the signature is incomplete", ""},
		{"file added to the signature", func(t *testing.T, dir string) { write(t, dir, "signature/note.txt", "x") }, false,
			"signature/note.txt: not a file a carrel export writes", ""},
		{"signature entry altered", func(t *testing.T, dir string) { flipByte(t, dir, sigEntryFile, -3) }, false,
			"signature/export-end.entry: its inclusion proof does not verify", ""},
		{"signature entry made to fit the rewritten manifests", func(t *testing.T, dir string) {
			old := sha256hex(readTree(t, dir)["tagmanifest-sha256.txt"])
			flipByte(t, dir, bookingsCSV, 40)
			remanifest(t, dir)
			now := sha256hex(readTree(t, dir)["tagmanifest-sha256.txt"])
			b, _ := os.ReadFile(filepath.Join(dir, sigEntryFile))
			write(t, dir, sigEntryFile, strings.Replace(string(b), old, now, 1))
		}, false, "signature/export-end.entry: its inclusion proof does not verify", ""},
		{"signature checkpoint altered", func(t *testing.T, dir string) { flipByte(t, dir, sigCheckpointFile, 20) }, false,
			"signature/checkpoint: not a checkpoint signed", ""},
		{"signature consistency proof altered", func(t *testing.T, dir string) { flipByte(t, dir, sigConsistency, -5) }, false,
			"signature/consistency: does not show", ""},
		{"tag manifest lists the signature", func(t *testing.T, dir string) { remanifestWith(t, dir, true) }, false,
			"lists signature/", ""},
		{"signature left half written", func(t *testing.T, dir string) { write(t, dir, ".signature.partial-1/export-end.entry", "x") }, false,
			".signature.partial-1/export-end.entry: not listed in tagmanifest-sha256.txt", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, identity := bundle(t)
			if _, err := VerifyDir(dir, VerifyOptions{}); err != nil {
				t.Fatalf("untouched copy: %v", err)
			}
			tt.tamper(t, dir)
			var opts VerifyOptions
			if tt.identity {
				opts.Identities = loadIDs(t, identity)
			}
			_, err := VerifyDir(dir, opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("VerifyDir after %s = %v; want an error containing %q", tt.name, err, tt.want)
			}
			if !errors.Is(err, ErrBadBag) {
				t.Errorf("VerifyDir error %v does not match ErrBadBag", err)
			}
			if errors.Is(err, ErrUnfinished) != strings.HasPrefix(tt.want, "signature/: missing") {
				t.Errorf("VerifyDir error %v matches ErrUnfinished: %v", err, errors.Is(err, ErrUnfinished))
			}
			if tt.deeper == "" {
				return
			}
			_, err = verifyUnsigned(t, dir, opts)
			switch {
			case tt.deeper == "-" && err != nil:
				t.Errorf("behind the signature, after %s: %v; want only the signature to catch it", tt.name, err)
			case tt.deeper != "-" && (err == nil || !strings.Contains(err.Error(), tt.deeper)):
				t.Errorf("behind the signature, after %s: %v; want an error containing %q", tt.name, err, tt.deeper)
			}
		})
	}
}

// verifyUnsigned runs the checks behind the signature.
func verifyUnsigned(t *testing.T, dir string, opts VerifyOptions) (*Report, error) {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	bag, err := ReadBag(dirFS{root})
	if err != nil {
		return nil, err
	}
	return verifyBag(dirFS{root}, bag, opts, false)
}

// removeSegment removes a sealed segment from the bag as a forger would:
// its sealed and decrypted files, its segment.sealed entry and proof, and
// its line in custody.json.
func removeSegment(t *testing.T, dir, base string) {
	t.Helper()
	for _, f := range []string{base + ".age", base, strings.TrimSuffix(base, ".jsonl") + ".csv"} {
		if err := os.Remove(filepath.Join(dir, trafficDir, f)); err != nil {
			t.Fatal(err)
		}
	}
	found := false
	for p, b := range readTree(t, filepath.Join(dir, auditDir, "entries")) {
		if strings.HasSuffix(p, ".entry") && strings.Contains(string(b), "name token "+base+".age\n") {
			os.Remove(filepath.Join(dir, auditDir, "entries", p))
			os.Remove(filepath.Join(dir, auditDir, "entries", strings.TrimSuffix(p, ".entry")+".proof"))
			found = true
		}
	}
	if !found {
		t.Fatalf("no segment.sealed entry names %s", base)
	}
	var c map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, custodyFile))
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	var kept []any
	for _, s := range c["segments"].([]any) {
		if s.(map[string]any)["name"] != base+".age" {
			kept = append(kept, s)
		}
	}
	c["segments"] = kept
	b, _ := json.MarshalIndent(c, "", "  ")
	write(t, dir, custodyFile, string(b)+"\n")
}

// TestVerifyWrongIdentity: a key that did not seal the traffic is named as
// the problem, not mistaken for tampering.
func TestVerifyWrongIdentity(t *testing.T) {
	dir, _ := bundle(t)
	other, _ := age.GenerateX25519Identity()
	_, err := VerifyDir(dir, VerifyOptions{Identities: []age.Identity{other}})
	if err == nil || !strings.Contains(err.Error(), "the identity given cannot decrypt it") {
		t.Fatalf("VerifyDir with another key = %v; want it to say the key cannot decrypt", err)
	}
}
