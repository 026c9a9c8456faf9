package config

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	example "github.com/carrel-lib/carrel/config"
)

// TestSetAPIUnder: a config made for another data folder gets an API of
// its own on each platform, and on Windows keeps an api_socket that
// Validate accepts (a Windows path there was refused, so `config init
// --data-dir C:\x` failed; the Wine test runs that on carrel.exe).
func TestSetAPIUnder(t *testing.T) {
	read := func(doc []byte) (socket, pipe string) {
		var c struct {
			Booking struct {
				APISocket string `toml:"api_socket"`
				APIPipe   string `toml:"api_pipe"`
			}
		}
		if _, err := toml.Decode(string(doc), &c); err != nil {
			t.Fatalf("decoding the example: %v", err)
		}
		return c.Booking.APISocket, c.Booking.APIPipe
	}

	socket, pipe := read(setAPIUnder(example.Example, "/srv/demo", "linux"))
	if socket != "/srv/demo/api.sock" || pipe != DefaultPipe {
		t.Errorf("linux: api_socket, api_pipe = %q, %q; want /srv/demo/api.sock, %s", socket, pipe, DefaultPipe)
	}

	socket, pipe = read(setAPIUnder(example.Example, `C:\x`, "windows"))
	if socket != DefaultSocket {
		t.Errorf("windows: api_socket = %q; want the default %q", socket, DefaultSocket)
	}
	if pipe != PipeFor(`C:\x`) || pipe == DefaultPipe || !strings.HasPrefix(pipe, DefaultPipe+"-") {
		t.Errorf(`windows: api_pipe = %q; want PipeFor(C:\x) = %q, not the service's`, pipe, PipeFor(`C:\x`))
	}
	c := Default()
	c.Booking.APISocket, c.Booking.APIPipe = socket, pipe
	for _, p := range c.validate() {
		if strings.HasPrefix(p.Key, "booking.") {
			t.Errorf("windows example for C:\\x: %v", p)
		}
	}
}

func TestPipeFor(t *testing.T) {
	same := [][2]string{{`C:\x`, `c:\X`}, {`C:\x`, `C:\x\`}, {`C:\x`, `C:/x`}}
	for _, s := range same {
		if PipeFor(s[0]) != PipeFor(s[1]) {
			t.Errorf("PipeFor(%q) = %q, PipeFor(%q) = %q; want the same pipe for the same folder", s[0], PipeFor(s[0]), s[1], PipeFor(s[1]))
		}
	}
	if a, b := PipeFor(`C:\x`), PipeFor(`C:\y`); a == b {
		t.Errorf(`PipeFor(C:\x) = PipeFor(C:\y) = %q; want different pipes`, a)
	}
	if p := PipeFor(`C:\x`); len(p) != len(DefaultPipe)+1+16 {
		t.Errorf(`PipeFor(C:\x) = %q; want \\.\pipe\carrel- and 16 hex digits`, p)
	}
}
