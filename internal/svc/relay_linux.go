package svc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
)

// relayUnitDir is where `carrel service install` puts carrel-witness.service,
// beside the carrel.service kardianos/service writes.
var relayUnitDir = "/etc/systemd/system"

// InstallRelay writes carrel-witness.service, the relay through which the
// service reaches its witnesses (carrel.service wants it). Install it
// before the service: kardianos/service reloads systemd after writing
// carrel.service.
func InstallRelay(exe, configPath string) error {
	unit, err := RenderRelayUnit(exe, configPath)
	if err != nil {
		return err
	}
	path := filepath.Join(relayUnitDir, RelayUnitName)
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// UninstallRelay stops and removes carrel-witness.service.
func UninstallRelay() error {
	exec.Command("systemctl", "stop", RelayUnitName).Run() // not running is fine
	path := filepath.Join(relayUnitDir, RelayUnitName)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	if out, err := exec.Command("systemctl", "daemon-reload").CombinedOutput(); err != nil {
		return fmt.Errorf("systemctl daemon-reload: %w: %s", err, out)
	}
	return nil
}
