package config

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// CurrentVersion is the only config version this carrel reads.
const CurrentVersion = 1

// Config is a parsed, defaulted carrel configuration. Keys are documented in
// config/carrel.example.toml, which `carrel config init` prints.
type Config struct {
	Version int     `toml:"version"`
	PC      PC      `toml:"pc"`
	Library Library `toml:"library"`
	Storage Storage `toml:"storage"`
	Booking Booking `toml:"booking"`
	Audit   Audit   `toml:"audit"`
	Capture Capture `toml:"capture"`
	// Cases are the [[case]] tables, in file order. Their problems are
	// judged by package misuse, not by Validate.
	Cases []Case `toml:"-"`

	// SHA256 is the digest of the file's bytes; the audit log records it so
	// that an entry can be tied to the exact file that was in force.
	SHA256 [32]byte `toml:"-"`
	// Path is where the config was read from ("" when parsed from memory).
	Path string `toml:"-"`
}

// PC identifies this computer.
type PC struct {
	// ID names the PC in bookings, in case scopes and in exports. Default:
	// the host name.
	ID string `toml:"id"`
}

// Library is printed on the notice and in the yearly report.
type Library struct {
	Name        string `toml:"name"`
	Responsible string `toml:"responsible"` // the head librarian or their title
	Contact     string `toml:"contact"`     // where patrons can ask
	Rules       string `toml:"rules"`       // where the rules for PC use are published
}

// Storage says where carrel keeps its data.
type Storage struct {
	DataDir string `toml:"data_dir"`
}

// Booking configures the booking log and its local API.
type Booking struct {
	Retention Duration `toml:"retention"`
	// APISocket is the Unix socket of the local API (Linux).
	APISocket string `toml:"api_socket"`
	// APIPipe is the named pipe of the local API (Windows).
	APIPipe string `toml:"api_pipe"`
	// ClientGroup is the group (Linux) or local group (Windows) whose members
	// may record bookings, besides root/Administrators and the service itself.
	ClientGroup string `toml:"client_group"`
}

// Audit configures the tamper-evident audit log.
type Audit struct {
	CheckpointInterval Duration `toml:"checkpoint_interval"`
	// OriginPrefix names the library in the origin of a new audit log:
	// "<origin_prefix>/<pc id>" (LogOrigin). Default "carrel".
	OriginPrefix string `toml:"origin_prefix"`
	// Witnesses are the transparency-log witnesses every checkpoint is
	// pushed to (witness.go).
	Witnesses []Witness `toml:"witnesses"`
	// WitnessQuorum is how many of them must cosign a checkpoint for it to
	// count as witnessed. Default 1.
	WitnessQuorum int `toml:"witness_quorum"`
}

// Capture holds the settings shared by every misuse case.
type Capture struct {
	Interface        string   `toml:"interface"`
	Recipients       []string `toml:"recipients"`
	MaxCaseDays      int      `toml:"max_case_days"`
	MaxBytes         Size     `toml:"max_bytes"`
	RingSize         Size     `toml:"ring_size"`
	TrafficRetention Duration `toml:"traffic_retention"`
}

// Problem is one thing wrong with a config, tied to its TOML key.
type Problem struct {
	Key  string // e.g. "booking.retention", "case[2026-03].approved_by"
	Msg  string
	Line int // the key's line in the file; 0 when not known or not in the file
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s: %s (line %d)", p.Key, p.Msg, p.Line)
	}
	return p.Key + ": " + p.Msg
}

// Problems is every problem found in a config. Load and Validate return it
// as their error so that callers can list each one.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Parse decodes data as a carrel config, fills in defaults and validates it.
// Every problem is reported at once, each with its dotted key (and its line
// when the key is in the file): a value of the wrong type does not hide an
// unknown key or a missing version. When the only problems are inside
// [[case]] tables the config is returned without error: those problems
// travel with the cases (Case.Problems).
func Parse(data []byte) (*Config, error) {
	var top map[string]toml.Primitive
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&top)
	if err != nil {
		return nil, Problems{{Key: "(file)", Msg: tomlError(err)}}
	}
	c := &Config{SHA256: sha256.Sum256(data)}
	d := decoder{md: &md, lines: map[string]int{}, bad: map[string]bool{}}
	cases := d.decodeAll(c, top)
	ps := d.problems
	if !md.IsDefined("version") {
		ps = append(ps, Problem{Key: "version", Msg: fmt.Sprintf("missing; add `version = %d` at the top", CurrentVersion)})
	}
	c.applyDefaults(md)
	for i, m := range cases {
		c.Cases = append(c.Cases, decodeCase(i, m))
	}
	// A value that could not be decoded was left at zero (absent is not
	// wrong: it gets no default); its rules would only repeat the problem.
	for _, p := range c.validate() {
		if d.hides(p.Key) {
			continue
		}
		p.Line = d.lines[strings.TrimRight(p.Key, "[]0123456789")]
		ps = append(ps, p)
	}
	if len(ps) > 0 {
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Key < ps[j].Key })
		return c, ps
	}
	return c, nil
}

// Validate checks every rule that does not depend on other files or on the
// clock. It returns nil or a Problems value.
func (c *Config) Validate() error {
	if ps := c.validate(); len(ps) > 0 {
		return ps
	}
	return nil
}

// tomlError turns a decode error into one line with a position.
func tomlError(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)
	}
	return err.Error()
}

// APIAddr is the local API's address on this platform: the Unix socket on
// Linux, the named pipe on Windows.
func (c *Config) APIAddr() string {
	if runtime.GOOS == "windows" {
		return c.Booking.APIPipe
	}
	return c.Booking.APISocket
}
