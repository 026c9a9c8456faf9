package svc

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The unit carrel installs (installer/linux/carrel.service.tmpl) runs the
// service in a sandbox: the whole file system read-only
// (ProtectSystem=strict) but for /var/lib/carrel and /run/carrel, and home
// folders hidden (ProtectHome=yes). A data folder elsewhere needs a drop-in
// that lets the service write it; these functions find out whether the
// installed unit does, and say what the drop-in must hold.

// unitFile is the name of carrel's unit.
const unitFile = "carrel.service"

// unitDirs are the folders systemd reads unit files and drop-ins from,
// the one that wins first.
var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system", "/lib/systemd/system"}

// homeDirs are what ProtectHome= hides or makes read-only.
var homeDirs = []string{"/home", "/root", "/run/user"}

// Sandbox is what the installed unit, with its drop-ins, lets the service
// write.
type Sandbox struct {
	Unit          string   // the unit file
	ProtectSystem string   // "strict", "full", "yes" or "" (none)
	ProtectHome   string   // "yes", "read-only", "tmpfs" or "" (none)
	ReadWrite     []string // ReadWritePaths
	Own           []string // the state and runtime folders systemd makes for it
}

// InstalledSandbox reads carrel's installed unit and its drop-ins. It
// returns false when no unit is installed (or it is masked): then carrel
// does not run under systemd here, or not in a sandbox of carrel's making.
func InstalledSandbox() (Sandbox, bool, error) { return readSandbox("/") }

// readSandbox reads the unit in the system whose root folder is root.
func readSandbox(root string) (Sandbox, bool, error) {
	var sb Sandbox
	for _, d := range unitDirs {
		p := filepath.Join(root, d, unitFile)
		if target, err := os.Readlink(p); err == nil && target == "/dev/null" {
			return sb, false, nil // masked
		}
		if _, err := os.Stat(p); err == nil {
			sb.Unit = filepath.Join(d, unitFile)
			break
		}
	}
	if sb.Unit == "" {
		return sb, false, nil
	}
	files := []string{filepath.Join(root, sb.Unit)}
	// Drop-ins: every carrel.service.d/*.conf, a name in a folder that
	// wins hiding the same name further down, applied in name order.
	byName := map[string]string{}
	for _, d := range slices.Backward(unitDirs) {
		matches, _ := filepath.Glob(filepath.Join(root, d, unitFile+".d", "*.conf"))
		for _, m := range matches {
			byName[filepath.Base(m)] = m
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		files = append(files, byName[n])
	}
	for _, f := range files {
		if err := sb.apply(f); err != nil {
			return sb, false, err
		}
	}
	return sb, true, nil
}

// apply reads the [Service] settings of one unit file or drop-in.
func (sb *Sandbox) apply(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	section, line := "", ""
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if line == "" && (strings.HasPrefix(text, "#") || strings.HasPrefix(text, ";")) {
			continue
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			line += cont + " "
			continue
		}
		line += text
		text, line = line, ""
		if strings.HasPrefix(text, "[") && strings.HasSuffix(text, "]") {
			section = text
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		if !ok || section != "[Service]" {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "ProtectSystem":
			sb.ProtectSystem = yesValue(value)
		case "ProtectHome":
			sb.ProtectHome = yesValue(value)
		case "ReadWritePaths":
			if value == "" {
				sb.ReadWrite = nil // an empty assignment resets the list
			}
			for _, p := range unitWords(value) {
				sb.ReadWrite = append(sb.ReadWrite, strings.TrimLeft(p, "-+"))
			}
		case "StateDirectory", "RuntimeDirectory":
			base := "/var/lib"
			if key == "RuntimeDirectory" {
				base = "/run"
			}
			if value == "" {
				sb.Own = slices.DeleteFunc(sb.Own, func(p string) bool { return within(p, base) })
			}
			for _, p := range unitWords(value) {
				p, _, _ = strings.Cut(p, ":") // a symlink to make: name:link
				sb.Own = append(sb.Own, filepath.Join(base, p))
			}
		}
	}
	return sc.Err()
}

// yesValue normalises a boolean-or-word setting: "" for off.
func yesValue(v string) string {
	switch strings.ToLower(v) {
	case "", "no", "false", "off", "0":
		return ""
	case "yes", "true", "on", "1":
		return "yes"
	}
	return strings.ToLower(v)
}

// unitWords splits a list setting into words, as systemd does: separated
// by whitespace, double quotes grouping, backslash escaping, %% for %.
func unitWords(s string) []string {
	var out []string
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+3 < len(s) && s[i+1] == 'x' && isHex(s[i+2]) && isHex(s[i+3]):
			v, _ := strconv.ParseUint(s[i+2:i+4], 16, 8)
			w.WriteByte(byte(v))
			i += 3
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == '"':
			quoted, inWord = !quoted, true
		case c == '%' && i+1 < len(s) && s[i+1] == '%':
			i++
			w.WriteByte('%')
			inWord = true
		case (c == ' ' || c == '\t') && !quoted:
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, w.String())
	}
	return out
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// Allows reports whether the sandbox lets the service write dir (an
// absolute path; links on its way are followed as far as they exist, as
// systemd follows them when it sets up the sandbox).
func (sb Sandbox) Allows(dir string) bool {
	dir = resolve(dir)
	covered := slices.ContainsFunc(append(slices.Clip(sb.ReadWrite), sb.Own...), func(w string) bool { return within(dir, resolve(w)) })
	if slices.ContainsFunc(homeDirs, func(h string) bool { return within(dir, h) }) {
		switch sb.ProtectHome {
		case "yes", "tmpfs":
			return false // hidden: ReadWritePaths cannot reach into it
		case "read-only":
			return covered
		}
	}
	switch sb.ProtectSystem {
	case "strict":
		return covered
	case "full":
		if within(dir, "/etc") {
			return covered
		}
		fallthrough
	case "yes":
		if within(dir, "/usr") || within(dir, "/boot") || within(dir, "/efi") {
			return covered
		}
	}
	return true
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// resolve follows the links of the longest part of path that exists.
func resolve(path string) string {
	path = filepath.Clean(path)
	rest := ""
	for p := path; ; p = filepath.Dir(p) {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		if p == filepath.Dir(p) {
			return path
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

// DataDirHint says how to let the installed unit write the data folder
// dir: the drop-in to add with `systemctl edit carrel`, and, when the
// folder does not exist yet, to make it first (systemd does not start a
// unit whose ReadWritePaths names a missing folder).
func DataDirHint(dir string, exists bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "the systemd unit lets carrel write only /var/lib/carrel (ProtectSystem=strict, ProtectHome=yes); to keep its data in %q, ", dir)
	if !exists {
		fmt.Fprintf(&b, "create the folder (install -d -m 0700 %s), ", shellQuote(dir))
	}
	b.WriteString("run `systemctl edit carrel`, add these lines where it says to, save, and run `systemctl restart carrel`:\n")
	b.WriteString(DropIn(dir))
	return strings.TrimSuffix(b.String(), "\n")
}

// DropIn is the drop-in that lets the service write dir.
func DropIn(dir string) string {
	s := "[Service]\nReadWritePaths=" + unitQuote(dir) + "\n"
	if slices.ContainsFunc(homeDirs, func(h string) bool { return within(filepath.Clean(dir), h) }) {
		// ProtectHome=yes hides the folder whatever ReadWritePaths says;
		// read-only keeps the rest of the home folders from being written.
		s += "ProtectHome=read-only\n"
	}
	return s
}

// unitQuote writes path as one word of a unit file list setting: %
// doubled (specifiers), and in double quotes with C escapes when it holds
// a space, a quote, a backslash or a control character.
func unitQuote(path string) string {
	s := strings.ReplaceAll(path, "%", "%%")
	if !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune("\"'\\", r) }) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// shellQuote writes s as one word for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
