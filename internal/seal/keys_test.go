package seal_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/keyfile/keyfiletest"
	"github.com/carrel-lib/carrel/internal/seal"
	"github.com/carrel-lib/carrel/internal/testenv"
)

func TestWriteIdentityFileMatchesAgeKeygen(t *testing.T) {
	keygen := testenv.NeedTool(t, "age-keygen")
	path := filepath.Join(t.TempDir(), "librarian.key")
	created := time.Date(2024, 5, 1, 14, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	recipient, err := seal.WriteIdentityFile(path, created)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("identity file mode = %v; want 0600", fi.Mode().Perm())
	}
	text, _ := os.ReadFile(path)
	form := regexp.MustCompile(`^# created: 2024-05-01T14:00:00\+02:00\n# public key: (age1[a-z0-9]{58})\nAGE-SECRET-KEY-1[A-Z0-9]{58}\n$`)
	m := form.FindSubmatch(text)
	if m == nil || string(m[1]) != recipient {
		t.Errorf("identity file = %q; want age-keygen's three lines with public key %s", text, recipient)
	}
	// age-keygen -y derives the public key from our file: it must agree.
	out, err := exec.Command(keygen, "-y", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != recipient {
		t.Errorf("age-keygen -y = %q, %v; want %s", out, err, recipient)
	}
}

func TestWriteIdentityFileNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "key")
	os.WriteFile(existing, []byte("precious"), 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(filepath.Join(dir, "elsewhere"), link)
	for _, path := range []string{existing, link} {
		if _, err := seal.WriteIdentityFile(path, time.Now()); !errors.Is(err, fs.ErrExist) {
			t.Errorf("WriteIdentityFile(%s) = %v; want fs.ErrExist", filepath.Base(path), err)
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "precious" {
		t.Errorf("existing file = %q; want it untouched", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a key was written through a symlink")
	}
	if _, err := seal.WriteIdentityFile(filepath.Join(dir, "no", "such", "dir"), time.Now()); err == nil {
		t.Error("WriteIdentityFile into a missing folder = nil error")
	}
}

// TestKeygenKilledWhileWriting kills `carrel keygen`'s writer (a real
// child process, SIGKILL) at each step of writing the identity file: the
// file is then absent, and keygen can simply run again, or whole and
// usable, never empty.
func TestKeygenKilledWhileWriting(t *testing.T) {
	for _, step := range keyfiletest.Steps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "librarian.key")
			keyfiletest.KillAt(t, step, path)
			if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
				if _, err := seal.WriteIdentityFile(path, time.Now()); err != nil {
					t.Fatalf("WriteIdentityFile after a kill at %q = %v", step, err)
				}
			}
			if ids, err := seal.LoadIdentities(path); err != nil || len(ids) != 1 {
				t.Fatalf("LoadIdentities after a kill at %q = %d, %v; want the one key", step, len(ids), err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("after a kill at %q the folder holds %d files; want only the key", step, len(entries))
			}
		})
	}
}

func TestLoadIdentitiesFromAgeKeygen(t *testing.T) {
	keygen := testenv.NeedTool(t, "age-keygen", "age")
	dir := t.TempDir()
	path := filepath.Join(dir, "k.txt")
	if out, err := exec.Command(keygen, "-o", path).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v: %s", err, out)
	}
	ids, err := seal.LoadIdentities(path)
	if err != nil || len(ids) != 1 {
		t.Fatalf("LoadIdentities(age-keygen file) = %v, %v; want one identity", ids, err)
	}
	// A segment sealed to that key opens with the age CLI and that file.
	e := newEnv(t)
	w := e.writer(seal.WriterOptions{Recipients: []string{ids[0].Recipient().String()}})
	w.Write([]byte("hello\n"), e.clock.Now())
	w.Close()
	seg := e.segments(seal.Filter{})[0]
	p, _ := e.store.Path(seg.Name)
	if got := ageCLIDecrypt(t, path, p); string(got) != "hello\n" {
		t.Errorf("age -d with the age-keygen file = %q; want hello", got)
	}
}

func TestParseIdentities(t *testing.T) {
	k := newKeypair(t)
	key := k.id.String()
	for _, c := range []struct {
		name string
		in   string
		n    int
		err  string
	}{
		{"carrel keygen", "# created: x\n# public key: " + k.recipient + "\n" + key + "\n", 1, ""},
		{"CRLF and BOM", "\xef\xbb\xbf# created: x\r\n\r\n" + key + "\r\n", 1, ""},
		{"two keys", key + "\n\n  " + key + "  \n", 2, ""},
		{"no trailing newline", key, 1, ""},
		{"empty", "", 0, "empty: it holds no key"},
		{"blank", " \r\n\n", 0, "empty: it holds no key"},
		{"comments only", "# public key: " + k.recipient + "\n", 0, "no secret key"},
		{"public key by mistake", k.recipient + "\n", 0, "line 1: not an age X25519 secret key"},
		{"post-quantum", "# c\nAGE-SECRET-KEY-PQ-1QQQQ\n", 0, "line 2: not an age X25519 secret key"},
		{"plugin", "AGE-PLUGIN-YUBIKEY-1XYZ\n", 0, "not an age X25519 secret key"},
		{"bad checksum", key[:len(key)-1] + "Q\n", 0, "line 1: malformed secret key"},
		{"lowercase", strings.ToLower(key) + "\n", 0, "not an age X25519 secret key"},
		{"too big", strings.Repeat("#", 70000), 0, "larger than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ids, err := seal.ParseIdentities(strings.NewReader(c.in))
			if c.err == "" {
				if err != nil || len(ids) != c.n {
					t.Fatalf("ParseIdentities() = %d, %v; want %d", len(ids), err, c.n)
				}
				if ids[0].Recipient().String() != k.recipient {
					t.Errorf("recipient = %s; want %s", ids[0].Recipient(), k.recipient)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("ParseIdentities() = %v; want %q", err, c.err)
			}
			if strings.Contains(err.Error(), key[16:40]) {
				t.Errorf("error %q echoes key material", err)
			}
		})
	}
	if _, err := seal.LoadIdentities(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadIdentities(missing) = %v; want ErrNotExist", err)
	}
}

func FuzzParseIdentities(f *testing.F) {
	f.Add([]byte("# created: 2024-05-01T12:00:00Z\n# public key: age1x\nAGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX\n"))
	f.Add([]byte("\xef\xbb\xbfAGE-SECRET-KEY-1\r\n"))
	f.Add([]byte("AGE-SECRET-KEY-PQ-1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ids, err := seal.ParseIdentities(bytes.NewReader(in))
		if err != nil {
			if len(ids) != 0 {
				t.Fatalf("ParseIdentities() = %d identities and error %v", len(ids), err)
			}
			return
		}
		if len(ids) == 0 {
			t.Fatal("ParseIdentities() = no identities and no error")
		}
		// Property: what parses round-trips through age-keygen's form.
		for _, id := range ids {
			again, err := seal.ParseIdentities(bytes.NewReader(seal.FormatIdentity(id, time.Unix(0, 0))))
			if err != nil || len(again) != 1 || again[0].String() != id.String() {
				t.Fatalf("FormatIdentity round trip = %v, %v", again, err)
			}
		}
	})
}
