package config

import (
	"os"
	"path/filepath"
)

// Platform defaults on Windows.
const (
	DefaultSocket = "/run/carrel/api.sock"
	DefaultPipe   = `\\.\pipe\carrel`
)

// DefaultPath is %ProgramData%\carrel\carrel.toml.
var DefaultPath = filepath.Join(programData(), "carrel", "carrel.toml")

// DefaultDataDir is %ProgramData%\carrel.
func DefaultDataDir() string { return filepath.Join(programData(), "carrel") }

func programData() string {
	if pd := os.Getenv("ProgramData"); pd != "" {
		return pd
	}
	return `C:\ProgramData`
}
