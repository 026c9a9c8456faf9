package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"unicode"

	"github.com/carrel-lib/carrel/internal/audit"
)

// Witness is one transparency-log witness in [audit] witnesses: the
// service pushes every checkpoint of the audit log to it (C2SP
// tlog-witness), and it cosigns each one that extends what it cosigned
// before.
type Witness struct {
	// Name names the witness in `carrel status`, the audit log and
	// `carrel audit witness ack NAME`.
	Name string `toml:"name"`
	// URL is where it takes add-checkpoint requests: https://, or http://
	// on a loopback address only.
	URL string `toml:"url"`
	// Key is its verifier key (tlog-cosignature, NAME+HASH+BASE64, as its
	// operator publishes it and litewitness logs it at start).
	Key string `toml:"key"`
}

// DefaultOriginPrefix makes the origin "carrel/<pc id>", the origin of every
// log made before audit.origin_prefix existed.
const DefaultOriginPrefix = "carrel"

// LogOrigin is the origin a new audit log of this PC takes: the first line
// of its checkpoints, the name witnesses know it by. An existing log keeps
// the origin it was made with (package audit).
func (c *Config) LogOrigin() string {
	p := c.Audit.OriginPrefix
	if p == "" {
		p = DefaultOriginPrefix
	}
	return p + "/" + c.PC.ID
}

// Bounds of the witness keys.
const (
	maxWitnesses       = 16
	maxWitnessURL      = 512
	maxOriginPrefixLen = 190 // with "/" and a 63-byte PC id, within the 255 of an origin
)

var witnessNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// witnessesInto reads [audit] witnesses: a list of tables, inline
// (witnesses = [{name = …, url = …, key = …}]) or as [[audit.witnesses]].
func witnessesInto(dst *[]Witness) leaf {
	return func(v any) error {
		var tables []map[string]any
		switch list := v.(type) {
		case []map[string]any:
			tables = list
		case []any:
			for i, e := range list {
				m, ok := e.(map[string]any)
				if !ok {
					return fmt.Errorf("item %d must be a table such as {name = \"w1\", url = \"https://…\", key = \"…\"}, not %s", i, tomlType(e))
				}
				tables = append(tables, m)
			}
		default:
			return fmt.Errorf("must be a list of tables such as [{name = \"w1\", url = \"https://…\", key = \"…\"}], not %s", tomlType(v))
		}
		if len(tables) > maxWitnesses {
			return fmt.Errorf("lists %d witnesses; at most %d", len(tables), maxWitnesses)
		}
		out := make([]Witness, 0, len(tables))
		for i, m := range tables {
			var w Witness
			fields := map[string]*string{"name": &w.Name, "url": &w.URL, "key": &w.Key}
			for _, k := range sortedKeys(m) {
				p, ok := fields[k]
				if !ok {
					return fmt.Errorf("item %d: unknown key %q (a witness has name, url and key)", i, k)
				}
				s, ok := m[k].(string)
				if !ok {
					return fmt.Errorf("item %d: %s must be a string, not %s", i, k, tomlType(m[k]))
				}
				*p = s
			}
			out = append(out, w)
		}
		*dst = out
		return nil
	}
}

// validateWitnesses checks [audit] origin_prefix, witnesses and
// witness_quorum.
func (c *Config) validateWitnesses(bad func(key, format string, a ...any)) {
	if p := c.Audit.OriginPrefix; p != "" {
		if err := checkOriginPrefix(p); err != nil {
			bad("audit.origin_prefix", "%v", err)
		}
	}
	names, keys := map[string]bool{}, map[string]bool{}
	for i, w := range c.Audit.Witnesses {
		key := func(k string) string { return fmt.Sprintf("audit.witnesses[%d].%s", i, k) }
		switch {
		case w.Name == "":
			bad(key("name"), "missing: name each witness (1-63 letters, digits, '.', '_' or '-')")
		case !witnessNamePattern.MatchString(w.Name):
			bad(key("name"), "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
		case names[w.Name]:
			bad(key("name"), "%q is used by another witness", w.Name)
		}
		names[w.Name] = true
		if err := checkWitnessURL(w.URL); err != nil {
			bad(key("url"), "%v", err)
		}
		if w.Key == "" {
			bad(key("key"), "missing: the witness's verifier key, as its operator publishes it (litewitness logs it at start as vkey=…)")
		} else if _, err := audit.ParseWitnessKey(w.Key); err != nil {
			bad(key("key"), "%v", err)
		} else if keys[w.Key] {
			bad(key("key"), "is the key of another witness in the list: one witness counts once towards the quorum")
		}
		keys[w.Key] = true
	}
	n := len(c.Audit.Witnesses)
	switch q := c.Audit.WitnessQuorum; {
	case q < 1:
		bad("audit.witness_quorum", "must be at least 1")
	case n > 0 && q > n:
		bad("audit.witness_quorum", "is %d, but only %d witnesses are listed: no checkpoint could ever count as witnessed", q, n)
	}
}

// checkOriginPrefix: the prefix and "/<pc id>" must make an origin a
// checkpoint and a note key name can carry.
func checkOriginPrefix(p string) error {
	switch {
	case len(p) > maxOriginPrefixLen:
		return fmt.Errorf("longer than %d bytes", maxOriginPrefixLen)
	case strings.ContainsFunc(p, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '+' || r == unicode.ReplacementChar
	}):
		return fmt.Errorf("may not hold spaces, control characters or '+': write a name your library controls, such as its web domain (\"bibliotek.example.dk/carrel\")")
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//"):
		return fmt.Errorf("may not start or end with '/' or hold '//': carrel adds \"/<pc id>\"")
	}
	return nil
}

// checkWitnessURL: https, or http to a loopback address (a witness on the
// PC itself, or in a test); no credentials, query or fragment.
func checkWitnessURL(s string) error {
	if s == "" {
		return fmt.Errorf("missing: where the witness takes add-checkpoint requests, e.g. \"https://witness.example.dk\"")
	}
	if len(s) > maxWitnessURL {
		return fmt.Errorf("longer than %d bytes", maxWitnessURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("must start with https://")
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("names no host")
	case u.User != nil:
		return fmt.Errorf("may not hold a user name or password")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return fmt.Errorf("may not hold a query or fragment")
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Errorf("must be https:// (plain http:// is allowed only to a loopback address such as 127.0.0.1)")
	}
	if p := u.Port(); p != "" {
		if n, err := parsePort(p); err != nil || n == 0 {
			return fmt.Errorf("port %q is not 1-65535", p)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parsePort(p string) (int, error) {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' || n > 65535 {
			return 0, fmt.Errorf("bad port")
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, fmt.Errorf("bad port")
	}
	return n, nil
}
