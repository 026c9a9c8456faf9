package main

import (
	"fmt"
	"path/filepath"

	"github.com/carrel-lib/carrel/internal/config"
)

func defaultConfigPath() string { return config.DefaultPath }

func absPath(p string) (string, error) { return filepath.Abs(p) }

// openDataDir judges and opens the config's data folder as the service
// does, creating nothing: a folder that another account could change is
// refused (with the fix as a hint). Close it when done; files in it are
// opened through Path.
func openDataDir(cfg *config.Config) (*config.DataDir, error) {
	d, err := config.OpenDataDir(cfg.Storage.DataDir, false)
	if err != nil {
		return nil, fmt.Errorf("storage.data_dir: %w", err)
	}
	return d, nil
}
