package audit

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escaping keeps every value of an entry on its line and makes the entry
// valid UTF-8 whatever a value holds: a backslash is written \\, a newline
// \n, and every other control byte and every byte that is not part of valid
// UTF-8 \xhh. It is part of the entry's wire form (see Entry).

const hexDigits = "0123456789abcdef"

func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
		case c < utf8.RuneSelf:
			b = append(b, c)
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		i++
	}
	return b
}

// unescape undoes appendEscaped. It does not check canonical form; callers
// re-encode and compare.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("escape at end of value")
		}
		switch s[i+1] {
		case '\\':
			b.WriteByte('\\')
			i++
		case 'n':
			b.WriteByte('\n')
			i++
		case 'x':
			if i+3 >= len(s) {
				return "", fmt.Errorf("short \\x escape")
			}
			hi, lo := strings.IndexByte(hexDigits, s[i+2]), strings.IndexByte(hexDigits, s[i+3])
			if hi < 0 || lo < 0 {
				return "", fmt.Errorf("bad \\x escape %q", s[i:i+4])
			}
			b.WriteByte(byte(hi<<4 | lo))
			i += 3
		default:
			return "", fmt.Errorf("unknown escape %q", s[i:i+2])
		}
	}
	return b.String(), nil
}
