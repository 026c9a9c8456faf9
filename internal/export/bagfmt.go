package export

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// The BagIt 1.0 text formats (RFC 8493) as carrel writes and reads them.
// Writing and parsing live together so that each parser accepts exactly
// what its writer produces, plus what the RFC allows other tools to write
// (CRLF line ends, several spaces between digest and path, folded
// bag-info values).

// bagitTxt is the bag declaration, byte for byte (RFC 8493 section 2.1.1).
const bagitTxt = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"

// Algorithms carrel writes manifests for, in the order it writes them.
var algorithms = []string{"sha256", "sha512"}

// Limits that keep the reader's memory bounded on hostile input.
const (
	maxTagFile  = 64 << 20 // a manifest of a million files is ~100 MiB at sha512; carrel writes far fewer
	maxInfoFile = 1 << 20
)

// field is one bag-info.txt line: a label and its value.
type field struct{ Label, Value string }

// encodeBagInfo writes fields one per line. Values never contain line
// breaks: the caller's values are single lines (Options.Validate).
func encodeBagInfo(fs []field) []byte {
	var b bytes.Buffer
	for _, f := range fs {
		fmt.Fprintf(&b, "%s: %s\n", f.Label, f.Value)
	}
	return b.Bytes()
}

// parseBagInfo reads bag-info.txt (RFC 8493 section 2.2.2): "Label: value"
// lines, a value continued on following lines that begin with a space or a
// tab. Labels may repeat; order is kept.
func parseBagInfo(b []byte) ([]field, error) {
	if len(b) > maxInfoFile {
		return nil, fmt.Errorf("bag-info.txt is %d bytes; at most %d are read", len(b), maxInfoFile)
	}
	if !utf8.Valid(b) {
		return nil, errors.New("bag-info.txt is not UTF-8")
	}
	var out []field
	for i, line := range splitLines(b) {
		if line == "" {
			return nil, fmt.Errorf("bag-info.txt line %d is empty", i+1)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(out) == 0 {
				return nil, fmt.Errorf("bag-info.txt line %d continues a value but no label came before it", i+1)
			}
			if more := strings.TrimSpace(line); more != "" {
				v := &out[len(out)-1].Value
				*v = strings.TrimSpace(*v + " " + more)
			}
			continue
		}
		label, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(label) == "" || label != strings.TrimSpace(label) {
			return nil, fmt.Errorf("bag-info.txt line %d is not \"Label: value\"", i+1)
		}
		out = append(out, field{Label: label, Value: strings.TrimSpace(value)})
	}
	return out, nil
}

// lookup returns the value of the only field with label; ok is false when
// there is none; more than one is an error.
func lookup(fs []field, label string) (value string, ok bool, err error) {
	for _, f := range fs {
		if strings.EqualFold(f.Label, label) {
			if ok {
				return "", false, fmt.Errorf("bag-info.txt has %s more than once", label)
			}
			value, ok = f.Value, true
		}
	}
	return value, ok, nil
}

// splitLines splits text on LF or CRLF; a final line end is optional.
func splitLines(b []byte) []string {
	s := strings.TrimSuffix(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// manifestLine is one line of a (tag) manifest.
type manifestLine struct {
	Sum  []byte
	Path string // slash-separated, relative to the bag root, decoded
}

// encodeManifest writes "<hex digest>  <path>" lines sorted by path, the
// form `sha256sum -c` reads. Paths are percent-encoded as RFC 8493 section
// 2.1.3 asks (CR, LF and %).
func encodeManifest(lines []manifestLine) []byte {
	sorted := slices.Clone(lines)
	slices.SortFunc(sorted, func(a, b manifestLine) int { return strings.Compare(a.Path, b.Path) })
	var b bytes.Buffer
	for _, l := range sorted {
		b.WriteString(hex.EncodeToString(l.Sum))
		b.WriteString("  ")
		b.WriteString(encodePath(l.Path))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// parseManifest reads a manifest whose digests are size bytes long. Every
// path must be a clean relative path inside the bag (see checkPath), and
// appear once.
func parseManifest(b []byte, size int) ([]manifestLine, error) {
	if len(b) > maxTagFile {
		return nil, fmt.Errorf("%d bytes; at most %d are read", len(b), maxTagFile)
	}
	var out []manifestLine
	seen := map[string]bool{}
	for i, line := range splitLines(b) {
		sum, rest, ok := strings.Cut(line, " ")
		if !ok {
			sum, rest, ok = strings.Cut(line, "\t")
		}
		if !ok {
			return nil, fmt.Errorf("line %d is not \"<digest> <path>\"", i+1)
		}
		rest = strings.TrimLeft(rest, " \t")
		// sha256sum writes "*path" for binary mode; accept it as the same path.
		rest = strings.TrimPrefix(rest, "*")
		d, err := hex.DecodeString(sum)
		if err != nil || len(d) != size {
			return nil, fmt.Errorf("line %d: %q is not a %d-byte hex digest", i+1, truncate(sum, 140), size)
		}
		p := decodePath(rest)
		if err := checkPath(p); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if seen[p] {
			return nil, fmt.Errorf("line %d: %s is listed twice", i+1, displayName(p))
		}
		seen[p] = true
		out = append(out, manifestLine{Sum: d, Path: p})
	}
	return out, nil
}

// checkPath refuses a path that is empty, absolute, not clean, climbs out
// of the bag, or uses a backslash or a drive letter (which would mean
// something else on Windows).
func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case !utf8.ValidString(p):
		return fmt.Errorf("path %q is not UTF-8", p)
	case strings.ContainsAny(p, "\\\x00"):
		return fmt.Errorf("path %q holds a backslash or NUL", truncate(p, 200))
	case strings.HasPrefix(p, "/") || (len(p) >= 2 && p[1] == ':'):
		return fmt.Errorf("path %q is absolute", truncate(p, 200))
	case path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q is not a clean path inside the bag", truncate(p, 200))
	}
	return nil
}

// encodePath percent-encodes what a manifest line cannot hold.
func encodePath(p string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(p)
}

// decodePath undoes encodePath; other percent signs stay as they are (RFC
// 8493 encodes only these three).
func decodePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+2 >= len(p) {
			b.WriteByte(p[i])
			continue
		}
		switch strings.ToUpper(p[i+1 : i+3]) {
		case "25":
			b.WriteByte('%')
		case "0D":
			b.WriteByte('\r')
		case "0A":
			b.WriteByte('\n')
		default:
			b.WriteByte(p[i])
			continue
		}
		i += 2
	}
	return b.String()
}

// truncate shortens s for an error message about outside input.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
