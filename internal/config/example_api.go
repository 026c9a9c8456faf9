package config

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strings"
)

// setAPIUnder gives a config whose data folder is dataDir an API endpoint
// of its own, on the platform goos, so that a second carrel (a demo, a
// test) never takes bookings meant for the installed service or has its
// own taken by it:
//   - Linux: api_socket is dataDir/api.sock, a folder its user can write;
//   - Windows: api_pipe is PipeFor(dataDir). A named pipe cannot live in
//     a folder, and api_socket keeps its (unused) default, which Validate
//     accepts; a Windows path there would be refused.
func setAPIUnder(doc []byte, dataDir, goos string) []byte {
	if goos == "windows" {
		return setValue(doc, "api_pipe", PipeFor(dataDir))
	}
	return setValue(doc, "api_socket", path.Join(dataDir, "api.sock"))
}

// PipeFor is the named pipe of the API of a carrel whose data folder is the
// Windows path dataDir: \\.\pipe\carrel- and 16 hex digits of the SHA-256
// of the folder's lower-cased path without a trailing separator (Windows
// paths ignore case; config init passes an absolute, cleaned one), so
// the same folder always gets the same pipe and two folders never share
// one.
func PipeFor(dataDir string) string {
	p := strings.ToLower(strings.TrimRight(strings.ReplaceAll(dataDir, "/", `\`), `\`))
	sum := sha256.Sum256([]byte(p))
	return DefaultPipe + "-" + hex.EncodeToString(sum[:8])
}
