package config

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// The TOML decoder stops at the first value of the wrong type, so a file
// with a bad retention and an unknown key would name only the first. carrel
// decodes the file into raw values (toml.Primitive) and then each key on
// its own, so that every problem is reported at once, with its dotted key
// and its line.

// leaf converts one raw TOML value into its field of Config.
type leaf func(v any) error

// schema lists every key of the file outside [[case]]: section ("" for the
// top level), then key, then how its value is stored into c.
func (c *Config) schema() map[string]map[string]leaf {
	return map[string]map[string]leaf{
		"": {"version": intInto(&c.Version)},
		"pc": {
			"id": stringInto(&c.PC.ID),
		},
		"library": {
			"name":        stringInto(&c.Library.Name),
			"responsible": stringInto(&c.Library.Responsible),
			"contact":     stringInto(&c.Library.Contact),
			"rules":       stringInto(&c.Library.Rules),
		},
		"storage": {
			"data_dir": stringInto(&c.Storage.DataDir),
		},
		"booking": {
			"retention":    durationInto(&c.Booking.Retention),
			"api_socket":   stringInto(&c.Booking.APISocket),
			"api_pipe":     stringInto(&c.Booking.APIPipe),
			"client_group": stringInto(&c.Booking.ClientGroup),
		},
		"audit": {
			"checkpoint_interval": durationInto(&c.Audit.CheckpointInterval),
			"origin_prefix":       stringInto(&c.Audit.OriginPrefix),
			"witnesses":           witnessesInto(&c.Audit.Witnesses),
			"witness_quorum":      intInto(&c.Audit.WitnessQuorum),
		},
		"capture": {
			"interface":         stringInto(&c.Capture.Interface),
			"recipients":        stringsInto(&c.Capture.Recipients),
			"max_case_days":     intInto(&c.Capture.MaxCaseDays),
			"max_bytes":         sizeInto(&c.Capture.MaxBytes),
			"ring_size":         sizeInto(&c.Capture.RingSize),
			"traffic_retention": durationInto(&c.Capture.TrafficRetention),
		},
	}
}

// decoder decodes the keys of one file, collecting problems.
type decoder struct {
	md       *toml.MetaData
	problems Problems
	lines    map[string]int  // dotted key → line, for every key seen
	bad      map[string]bool // keys whose value could not be decoded
}

// probe takes a raw value from the TOML decoder. It always fails, because
// the decoder names the line of a key only in the error it returns.
type probe struct{ v any }

var errProbe = errors.New("probe")

func (p *probe) UnmarshalTOML(v any) error { p.v = v; return errProbe }

// value returns the raw value of prim and the line of its key (0 when
// unknown).
func (d *decoder) value(prim toml.Primitive) (any, int) {
	var p probe
	err := d.md.PrimitiveDecode(prim, &p)
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return p.v, pe.Position.Line
	}
	return p.v, 0
}

func (d *decoder) problem(key string, line int, format string, a ...any) {
	d.problems = append(d.problems, Problem{Key: key, Msg: fmt.Sprintf(format, a...), Line: line})
	d.bad[key] = true
}

// decodeAll fills c from the top-level table top and returns the [[case]]
// tables, undecoded.
func (d *decoder) decodeAll(c *Config, top map[string]toml.Primitive) []map[string]any {
	schema := c.schema()
	var cases []map[string]any
	for _, name := range sortedKeys(top) {
		prim := top[name]
		key := toml.Key{name}.String()
		if name == "case" {
			cases = d.cases(prim)
			continue
		}
		if set, ok := schema[""][name]; ok {
			d.leaf(key, prim, set)
			continue
		}
		fields, ok := schema[name]
		if !ok || name == "" {
			_, line := d.value(prim)
			d.lines[key] = line
			d.problem(key, line, "unknown key")
			continue
		}
		// A section may be a [table], an inline table or made by dotted
		// keys (pc.id = "x"); all three decode to a map.
		if v, line := d.value(prim); !isTable(v) {
			d.lines[key] = line
			d.problem(key, line, "must be a table ([%s]), not %s", name, tomlType(v))
			continue
		}
		var section map[string]toml.Primitive
		if err := d.md.PrimitiveDecode(prim, &section); err != nil {
			d.problem(key, 0, "%s", tomlError(err)) // not reached: checked above
			continue
		}
		for _, k := range sortedKeys(section) {
			sub := toml.Key{name, k}.String()
			set, ok := fields[k]
			if !ok {
				_, line := d.value(section[k])
				d.lines[sub] = line
				d.problem(sub, line, "unknown key")
				continue
			}
			d.leaf(sub, section[k], set)
		}
	}
	return cases
}

func (d *decoder) leaf(key string, prim toml.Primitive, set leaf) {
	v, line := d.value(prim)
	d.lines[key] = line
	if err := set(v); err != nil {
		d.problem(key, line, "%s", err)
	}
}

// cases decodes the [[case]] tables. Problems inside a table travel with
// its case; only a "case" key that is not a list of tables is a problem of
// the file.
func (d *decoder) cases(prim toml.Primitive) []map[string]any {
	v, line := d.value(prim)
	d.lines["case"] = line
	switch list := v.(type) {
	case []map[string]any:
		return list
	case []any:
		out := make([]map[string]any, 0, len(list))
		for _, e := range list {
			m, ok := e.(map[string]any)
			if !ok {
				d.problem("case", line, "must be [[case]] tables, not a list of %s", tomlType(e))
				return nil
			}
			out = append(out, m)
		}
		return out
	default:
		d.problem("case", line, "must be [[case]] tables (with double brackets), not %s", tomlType(v))
		return nil
	}
}

func stringInto(dst *string) leaf {
	return func(v any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("must be a string, not %s", tomlType(v))
		}
		*dst = s
		return nil
	}
}

func intInto(dst *int) leaf {
	return func(v any) error {
		n, ok := v.(int64)
		if !ok {
			return fmt.Errorf("must be a whole number, not %s", tomlType(v))
		}
		if n < math.MinInt || n > math.MaxInt {
			return fmt.Errorf("%d is out of range", n)
		}
		*dst = int(n)
		return nil
	}
}

// durationInto reads a duration in quotes. One too long to represent is
// kept as the longest there is, never wrapped, so that the key's own bound
// (every duration key has one) names the problem: "must be between 1h and
// 366d", not the width of an int64.
func durationInto(dst *Duration) leaf {
	return func(v any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("must be a duration in quotes such as \"28d\", \"36h\" or \"15m\", not %s", tomlType(v))
		}
		err := dst.UnmarshalText([]byte(s))
		if errors.Is(err, ErrDurationRange) && !strings.HasPrefix(strings.TrimSpace(s), "-") {
			*dst = Duration(math.MaxInt64)
			return nil
		}
		return err
	}
}

// sizeInto reads a size in quotes ("16MiB") or a whole number of bytes.
func sizeInto(dst *Size) leaf {
	return func(v any) error {
		switch s := v.(type) {
		case string:
			return dst.UnmarshalText([]byte(s))
		case int64:
			if s < 0 || s > MaxSize {
				return fmt.Errorf("invalid size: want a whole number of bytes from 0 to %d", int64(MaxSize))
			}
			*dst = Size(s)
			return nil
		default:
			return fmt.Errorf("must be a size such as \"16MiB\" or a whole number of bytes, not %s", tomlType(v))
		}
	}
}

func stringsInto(dst *[]string) leaf {
	return func(v any) error {
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("must be a list of strings such as [\"a\", \"b\"], not %s", tomlType(v))
		}
		out := make([]string, 0, len(list))
		for i, e := range list {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("item %d must be a string, not %s", i, tomlType(e))
			}
			out = append(out, s)
		}
		*dst = out
		return nil
	}
}

func isTable(v any) bool {
	_, ok := v.(map[string]any)
	return ok
}

// hides reports whether a problem with key is only a consequence of a
// value that could not be decoded: the key itself, an element of it
// ("capture.recipients[0]") or a key inside it ("pc.id" when pc is not a
// table).
func (d *decoder) hides(key string) bool {
	key = strings.TrimRight(key, "[]0123456789")
	for {
		if d.bad[key] {
			return true
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			return false
		}
		key = key[:i]
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
