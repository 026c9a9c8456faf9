package config

import (
	"bytes"
	"fmt"
	"regexp"
	"runtime"
	"strings"

	example "github.com/carrel-lib/carrel/config"
)

// Example returns the commented default config. When dataDir is not empty,
// the data folder is placed there and the API gets an endpoint of its own
// (setAPIUnder), so that a user without root can run `carrel run` on the
// result next to an installed service.
func Example(dataDir string) []byte {
	return ExampleWith(ExampleOptions{DataDir: dataDir})
}

// ExampleOptions fill in the default config for one PC, as an installer
// does from its properties.
type ExampleOptions struct {
	DataDir    string   // data folder, with an API endpoint of its own; "" for the default
	PCID       string   // pc.id; "" leaves the host name in force
	Recipients []string // capture.recipients; nil leaves the list empty
}

// ExampleWith returns the commented default config with o filled in.
func ExampleWith(o ExampleOptions) []byte {
	out := example.Example
	dd := DefaultDataDir()
	if o.DataDir != "" {
		dd = o.DataDir
		out = setAPIUnder(out, o.DataDir, runtime.GOOS)
	}
	if o.DataDir != "" || runtime.GOOS != "linux" {
		out = setValue(out, "data_dir", dd)
	}
	if o.PCID != "" {
		out = bytes.Replace(out, []byte("\n# id = \"pc-01\"\n"), []byte("\nid = "+tomlString(o.PCID)+"\n"), 1)
	}
	if len(o.Recipients) > 0 {
		quoted := make([]string, len(o.Recipients))
		for i, r := range o.Recipients {
			quoted[i] = tomlString(r)
		}
		out = regexp.MustCompile(`(?m)^recipients = \[\]$`).ReplaceAll(out, []byte("recipients = ["+strings.Join(quoted, ", ")+"]"))
	}
	return out
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// setValue replaces the value of the first line `key = "..."` with a TOML
// literal string holding v (literal, so that Windows backslashes stay as
// they are).
func setValue(doc []byte, key, v string) []byte {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + ` = .*$`)
	loc := re.FindIndex(doc)
	if loc == nil {
		panic(fmt.Sprintf("config: example has no %s line", key)) // a build-time bug, caught by tests
	}
	lit := "'" + v + "'"
	if strings.Contains(v, "'") {
		lit = fmt.Sprintf("%q", v)
	}
	var b bytes.Buffer
	b.Write(doc[:loc[0]])
	b.WriteString(key + " = " + lit)
	b.Write(doc[loc[1]:])
	return b.Bytes()
}
