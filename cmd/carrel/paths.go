package main

import (
	"fmt"
	"path/filepath"

	"github.com/carrel-lib/carrel/internal/config"
)

func defaultConfigPath() string { return config.DefaultPath }

func absPath(p string) (string, error) { return filepath.Abs(p) }

// loadDataDir loads the config at path, then judges and opens its data
// folder as the service does, creating nothing: a folder that another
// account could change is refused (with the fix as a hint). When only the
// folder fails, the config is returned with the error (ErrNoDataDir: the
// service has not made it yet). Close the folder when done; files in it
// are opened through Path.
func loadDataDir(path string) (*config.Config, *config.DataDir, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	d, err := config.OpenDataDir(cfg.Storage.DataDir, false)
	if err != nil {
		return cfg, nil, fmt.Errorf("storage.data_dir: %w", err)
	}
	return cfg, d, nil
}
