package main

import (
	"path/filepath"

	"github.com/carrel-lib/carrel/internal/config"
)

func defaultConfigPath() string { return config.DefaultPath }

func absPath(p string) (string, error) { return filepath.Abs(p) }
