package svc

import (
	"log/slog"

	"github.com/kardianos/service"
)

// runArgs is the command line the installed service runs. systemd's unit
// needs no flag to say so: carrel tells systemd from a terminal by its
// parent (kardianos/service), and the .deb and this unit have always run
// just `run --config FILE`.
func runArgs(configPath string) []string {
	return []string{"run", "--config", configPath}
}

// managerFor is what Run runs under systemd: kardianos/service's Run,
// which starts the daemon and stops it on SIGTERM.
func managerFor(s service.Service, _ *program, _ *slog.Logger) manager { return s }
