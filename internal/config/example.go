package config

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	example "github.com/carrel-lib/carrel/config"
)

// Example returns the commented default config. When dataDir is not empty,
// the data folder and the API socket are placed under it, so that a user
// without root can run `carrel run` on the result.
func Example(dataDir string) []byte {
	out := example.Example
	dd := DefaultDataDir()
	if dataDir != "" {
		dd = dataDir
		out = setValue(out, "api_socket", filepath.Join(dataDir, "api.sock"))
	}
	if dataDir != "" || runtime.GOOS != "linux" {
		out = setValue(out, "data_dir", dd)
	}
	return out
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
