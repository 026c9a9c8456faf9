package config

// Platform defaults on Linux.
const (
	DefaultPath   = "/etc/carrel/carrel.toml"
	DefaultSocket = "/run/carrel/api.sock"
	DefaultPipe   = `\\.\pipe\carrel`
)

// DefaultDataDir is where the service keeps its databases and keys.
func DefaultDataDir() string { return "/var/lib/carrel" }
