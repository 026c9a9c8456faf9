package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// write creates name in dir holding the base config, with mode.
func write(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// mkdir creates the folder name in dir with mode.
func mkdir(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// privateDir is a temporary folder only its owner can write, with every
// folder above it safe (t.TempDir's parent is the sticky /tmp).
func privateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func symlink(t *testing.T, target, link string) string {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// giveAway makes path belong to the unprivileged account 65534.
func giveAway(t *testing.T, path string) {
	t.Helper()
	testenv.NeedRoot(t)
	if err := os.Lchown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
}

// TestLoadPermissions: Load judges the config file and every folder and
// link on the way to it, as given and as resolved. Each row builds a tree
// and names the path that must be refused ("" when the file is safe).
func TestLoadPermissions(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the --config path
		wantBad string                                // a path suffix that must be named; "" = safe
		wantWhy string
	}{
		{"safe", func(t *testing.T, dir string) string {
			return write(t, dir, "c.toml", 0o600)
		}, "", ""},
		{"config group-writable", func(t *testing.T, dir string) string {
			return write(t, dir, "c.toml", 0o664)
		}, "/c.toml", "writable by group or others (mode 0664)"},
		{"config world-writable", func(t *testing.T, dir string) string {
			return write(t, dir, "c.toml", 0o646)
		}, "/c.toml", "writable by group or others"},
		{"parent writable", func(t *testing.T, dir string) string {
			return write(t, mkdir(t, dir, "etc", 0o777), "c.toml", 0o600)
		}, "/etc", "writable by group or others (mode 0777)"},
		{"sticky parent ok", func(t *testing.T, dir string) string {
			return write(t, mkdir(t, dir, "tmp", 0o777|os.ModeSticky), "c.toml", 0o600)
		}, "", ""},
		{"link to unsafe file", func(t *testing.T, dir string) string {
			return symlink(t, write(t, dir, "real.toml", 0o666), filepath.Join(dir, "c.toml"))
		}, "/real.toml", "writable by group or others"},
		{"relative link ok", func(t *testing.T, dir string) string {
			write(t, mkdir(t, dir, "etc", 0o755), "real.toml", 0o600)
			return symlink(t, "etc/real.toml", filepath.Join(dir, "c.toml"))
		}, "", ""},
		// The folder that holds a link is judged like any folder on the
		// way: whoever can write it can point the link elsewhere.
		{"link in a world-writable folder", func(t *testing.T, dir string) string {
			real := write(t, dir, "real.toml", 0o600)
			return symlink(t, real, filepath.Join(mkdir(t, dir, "open", 0o777), "c.toml"))
		}, "/open", "writable by group or others (mode 0777)"},
		{"link in a link's folder, further down a chain", func(t *testing.T, dir string) string {
			real := write(t, dir, "real.toml", 0o600)
			mid := symlink(t, real, filepath.Join(mkdir(t, dir, "open", 0o777), "mid.toml"))
			return symlink(t, mid, filepath.Join(dir, "c.toml"))
		}, "/open", "writable by group or others (mode 0777)"},
		{"folder through a link in a writable folder", func(t *testing.T, dir string) string {
			etc := mkdir(t, dir, "etc", 0o755)
			write(t, etc, "c.toml", 0o600)
			link := symlink(t, etc, filepath.Join(mkdir(t, dir, "open", 0o777), "etc"))
			return filepath.Join(link, "c.toml")
		}, "/open", "writable by group or others (mode 0777)"},
		{"dot-dot through a writable folder", func(t *testing.T, dir string) string {
			write(t, dir, "c.toml", 0o600)
			mkdir(t, dir, "open", 0o777)
			return filepath.Join(dir, "open") + "/../c.toml"
		}, "/open", "writable by group or others (mode 0777)"},
		{"config is a folder", func(t *testing.T, dir string) string {
			return mkdir(t, dir, "c.toml", 0o700)
		}, "/c.toml", "not a regular file"},
		{"config is a FIFO", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "c.toml")
			if err := unix.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, "/c.toml", "not a regular file"},
		{"link loop", func(t *testing.T, dir string) string {
			symlink(t, filepath.Join(dir, "b"), filepath.Join(dir, "a"))
			return symlink(t, filepath.Join(dir, "a"), filepath.Join(dir, "b"))
		}, "", "too many links"},
		{"file below a file", func(t *testing.T, dir string) string {
			return filepath.Join(write(t, dir, "c.toml", 0o600), "x")
		}, "/c.toml", "not a folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := privateDir(t)
			p := tt.setup(t, dir)
			c, err := Load(p)
			if tt.wantWhy == "" {
				if err != nil || c == nil {
					t.Fatalf("Load() = %v, %v; want a config", c, err)
				}
				return
			}
			if c != nil {
				t.Errorf("Load() returned a config with a refusal")
			}
			var pe *PermissionError
			if !IsRefusal(err) || !errors.As(err, &pe) {
				t.Fatalf("Load() = %v; want a refusal for permissions", err)
			}
			for _, p := range pe.Problems {
				if strings.HasSuffix(p.Path, tt.wantBad) && strings.Contains(p.Why, tt.wantWhy) {
					return
				}
			}
			t.Errorf("Load() = %v; want %s named: %s", err, tt.wantBad, tt.wantWhy)
		})
	}
}

// TestLoadPermissionsOwner: entries owned by another account are refused,
// the link itself included: in a sticky folder its owner may replace it.
func TestLoadPermissionsOwner(t *testing.T) {
	testenv.NeedRoot(t)
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string
		wantBad string
	}{
		{"file of nobody", func(t *testing.T, dir string) string {
			p := write(t, dir, "c.toml", 0o600)
			os.WriteFile(p, []byte("not = [toml"), 0o600) // refused unread: no content problem
			giveAway(t, p)
			return p
		}, "/c.toml"},
		{"link in a folder of nobody", func(t *testing.T, dir string) string {
			real := write(t, dir, "real.toml", 0o600)
			home := mkdir(t, dir, "home", 0o755)
			giveAway(t, home)
			return symlink(t, real, filepath.Join(home, "c.toml"))
		}, "/home"},
		{"link of nobody in a sticky folder", func(t *testing.T, dir string) string {
			real := write(t, dir, "real.toml", 0o600)
			link := symlink(t, real, filepath.Join(mkdir(t, dir, "tmp", 0o777|os.ModeSticky), "c.toml"))
			giveAway(t, link)
			return link
		}, "/tmp/c.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.setup(t, privateDir(t))
			_, err := Load(p)
			var pe *PermissionError
			if !errors.As(err, &pe) {
				t.Fatalf("Load() = %v; want a refusal naming %s", err, tt.wantBad)
			}
			var ps Problems
			if errors.As(err, &ps) {
				t.Errorf("Load() read a file another account controls: %v", ps)
			}
			for _, p := range pe.Problems {
				if strings.HasSuffix(p.Path, tt.wantBad) && strings.Contains(p.Why, "owned by uid 65534") && p.Fix != "" {
					return
				}
			}
			t.Errorf("Load() = %v; want %s named as owned by uid 65534, with a fix", err, tt.wantBad)
		})
	}
}

// TestLoadRaceSwap: root (simulating the race an account with write access
// would run) swaps a link between a safe config and a world-writable one
// that declares a case, while Load runs again and again. Load judges and
// reads one open file, so the unsafe file's content is never returned as
// a config; before, the file was loaded by name and checked by name, and
// the two could differ.
func TestLoadRaceSwap(t *testing.T) {
	dir := privateDir(t)
	good := write(t, dir, "good.toml", 0o600)
	evil := filepath.Join(dir, "evil.toml")
	evilDoc := base + "[[case]]\nid = \"evil\"\n"
	if err := os.WriteFile(evil, []byte(evilDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(evil, 0o666); err != nil {
		t.Fatal(err)
	}
	link := symlink(t, good, filepath.Join(dir, "c.toml"))
	stop := make(chan struct{})
	swaps := make(chan int)
	go func() {
		n := 0
		defer func() { swaps <- n }()
		for ; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			target := good
			if n%2 == 0 {
				target = evil
			}
			os.Remove(link + ".new")
			if err := os.Symlink(target, link+".new"); err != nil {
				panic(err)
			}
			if err := os.Rename(link+".new", link); err != nil {
				panic(err)
			}
		}
	}()
	var accepted, refused int
	for i := 0; i < 3000; i++ {
		c, err := Load(link)
		switch {
		case err == nil:
			accepted++
			if len(c.Cases) > 0 {
				close(stop)
				<-swaps
				t.Fatalf("Load() put the world-writable file's case in force (after %d loads)", i)
			}
		case IsRefusal(err):
			refused++
		}
	}
	close(stop)
	n := <-swaps
	t.Logf("%d loads accepted the safe file, %d refused the unsafe one, over %d swaps", accepted, refused, n)
	if accepted == 0 || refused == 0 {
		t.Errorf("the swap was not seen both ways (%d accepted, %d refused); the test did not race", accepted, refused)
	}
}

// TestLoadUnreadableIsNotRefusal: a config that cannot be opened for lack
// of file descriptors (EMFILE) is not a refused config: the service keeps
// its config and tries again, and no refusal is recorded.
func TestLoadUnreadableIsNotRefusal(t *testing.T) {
	dir := privateDir(t)
	p := write(t, dir, "c.toml", 0o600)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	// No descriptor above those open now (ReadDir's own is closed again).
	low := old
	low.Cur = uint64(len(fds))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	_, err = Load(p)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, syscall.EMFILE) || IsRefusal(err) {
		t.Fatalf("Load() with no free descriptor = %v; want EMFILE, not a refusal", err)
	}
	if _, err := Load(filepath.Join(dir, "absent.toml")); !errors.Is(err, ErrNotFound) || IsRefusal(err) {
		t.Errorf("Load(absent) = %v; want ErrNotFound, not a refusal", err)
	}
	if _, err := Load(p); err != nil {
		t.Errorf("Load() once descriptors are free = %v; want nil", err)
	}
}

// TestLoadTooLarge: a file made to exhaust memory is not read whole.
func TestLoadTooLarge(t *testing.T) {
	dir := privateDir(t)
	p := filepath.Join(dir, "c.toml")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil { // sparse: 1 TiB of zeros
		t.Fatal(err)
	}
	f.Close()
	_, err = Load(p)
	var ps Problems
	if !errors.As(err, &ps) || ps[0].Key != "(file)" || !strings.Contains(ps[0].Msg, "larger than") {
		t.Errorf("Load(1 TiB) = %v; want refused as too large", err)
	}
}

// TestCheckDataDir: the data folder, and the folder that would hold it
// when it is not created yet, judged as strictly as a leaf (a sticky /tmp
// lets another account create the folder first).
func TestCheckDataDir(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string
		wantBad string // "" = safe
	}{
		{"safe", func(t *testing.T, dir string) string { return mkdir(t, dir, "data", 0o700) }, ""},
		{"not created yet", func(t *testing.T, dir string) string { return filepath.Join(dir, "later", "data") }, ""},
		{"world-writable", func(t *testing.T, dir string) string { return mkdir(t, dir, "data", 0o777) }, "/data"},
		{"not created yet in a sticky folder", func(t *testing.T, dir string) string {
			return filepath.Join(mkdir(t, dir, "tmp", 0o777|os.ModeSticky), "data")
		}, "/tmp"},
		{"through a link in a writable folder", func(t *testing.T, dir string) string {
			data := mkdir(t, dir, "data", 0o700)
			return symlink(t, data, filepath.Join(mkdir(t, dir, "open", 0o777), "data"))
		}, "/open"},
		{"a file", func(t *testing.T, dir string) string { return write(t, dir, "data", 0o600) }, "/data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.setup(t, privateDir(t))
			err := CheckDataDir(p)
			if tt.wantBad == "" {
				if err != nil {
					t.Fatalf("CheckDataDir() = %v; want nil", err)
				}
				if _, err := os.Stat(p); err == nil && tt.name == "not created yet" {
					t.Errorf("CheckDataDir() created %s", p)
				}
				return
			}
			var pe *PermissionError
			if !errors.As(err, &pe) || !strings.HasSuffix(pe.Problems[0].Path, tt.wantBad) {
				t.Fatalf("CheckDataDir() = %v; want %s named", err, tt.wantBad)
			}
			if _, err := OpenDataDir(p, true); !errors.As(err, &pe) {
				t.Errorf("OpenDataDir() = %v; want the same refusal", err)
			}
		})
	}
}

// TestCheckSocketDir: a socket folder every account can write, sticky or
// not, is refused: another account could take the socket's name first.
func TestCheckSocketDir(t *testing.T) {
	dir := privateDir(t)
	tests := []struct {
		socket  string
		wantBad string
	}{
		{filepath.Join(mkdir(t, dir, "run", 0o755), "api.sock"), ""},
		{filepath.Join(dir, "later", "api.sock"), ""},
		{filepath.Join(mkdir(t, dir, "tmp", 0o777|os.ModeSticky), "api.sock"), "/tmp"},
		{filepath.Join(mkdir(t, dir, "open", 0o777), "api.sock"), "/open"},
		{filepath.Join(dir, "tmp", "later", "api.sock"), "/tmp"},
		{"/tmp/api.sock", "/tmp"},
	}
	for _, tt := range tests {
		err := CheckSocketDir(tt.socket)
		var pe *PermissionError
		switch {
		case tt.wantBad == "" && err != nil:
			t.Errorf("CheckSocketDir(%s) = %v; want nil", tt.socket, err)
		case tt.wantBad != "" && (!errors.As(err, &pe) || !strings.HasSuffix(pe.Problems[0].Path, tt.wantBad)):
			t.Errorf("CheckSocketDir(%s) = %v; want %s named", tt.socket, err, tt.wantBad)
		}
	}
}

// TestOpenDataDir: the folder is opened once and files are opened through
// the held descriptor. Re-pointing the link it was reached through (root
// simulating the race) does not move them, and messages name the folder.
func TestOpenDataDir(t *testing.T) {
	dir := privateDir(t)
	real := mkdir(t, dir, "real", 0o700)
	decoy := mkdir(t, dir, "decoy", 0o700)
	link := symlink(t, real, filepath.Join(dir, "data"))
	d, err := OpenDataDir(filepath.Join(link, "sub"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if want := filepath.Join(real, "sub"); d.Name() != want {
		t.Errorf("Name() = %q; want %q", d.Name(), want)
	}
	if !strings.HasPrefix(d.Path(), "/proc/self/fd/") {
		t.Errorf("Path() = %q; want the held descriptor", d.Path())
	}
	os.Remove(link)
	symlink(t, decoy, link)
	os.Mkdir(filepath.Join(decoy, "sub"), 0o700)
	if err := os.WriteFile(d.Join("x"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(real, "sub", "x")); err != nil {
		t.Errorf("file written through Path() is not in the folder opened: %v", err)
	}
	_, err = os.Open(d.Join("missing"))
	if named := d.Named(err); !strings.Contains(named.Error(), filepath.Join(real, "sub", "missing")) ||
		strings.Contains(named.Error(), "/proc/") || !errors.Is(named, os.ErrNotExist) {
		t.Errorf("Named(%v) = %v; want the real folder named and the error kept", err, named)
	}
	if _, err := OpenDataDir(filepath.Join(dir, "absent"), false); !errors.Is(err, ErrNoDataDir) {
		t.Errorf("OpenDataDir(absent, no create) = %v; want ErrNoDataDir", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "absent")); err == nil {
		t.Errorf("OpenDataDir(absent, no create) created the folder")
	}

}
