package svc

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kardianos/service"
	"golang.org/x/sys/windows"
	winsvc "golang.org/x/sys/windows/svc"
)

// runArgs is the command line the installed service runs. `--service`
// says that the service manager started it, so `carrel run` calls Run
// without asking Interactive. Without it carrel would have to guess from
// its session, as kardianos/service does (svc.IsWindowsService): under
// Wine, whose services.exe does not run services in session 0, that guess
// said "interactive", carrel never connected to the service manager, and
// every `service start` timed out.
func runArgs(configPath string) []string {
	return []string{"run", "--service", "--config", configPath}
}

// managerFor is what Run runs under the Windows service manager: a
// connection to it that does not depend on kardianos/service's session
// guess, logging to the event log.
func managerFor(s service.Service, p *program, log *slog.Logger) manager {
	if log != nil {
		// newService chose the logger by Interactive(), which the guess
		// decides; under the manager it is always the event log.
		p.log = eventLogger(s, log)
	}
	return &scm{s: s, p: p}
}

// scm runs the daemon as the service the Windows service manager started:
// it connects to the manager (StartServiceCtrlDispatcher), reports the
// service running once the daemon has been started, and on a stop or
// shutdown request stops the daemon cleanly before it reports the service
// stopped.
type scm struct {
	s   service.Service
	p   *program
	err error // why the daemon could not start or stop cleanly, for Run
}

func (m *scm) Run() error {
	if err := winsvc.Run(Name, m); err != nil {
		if errors.Is(err, windows.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
			return fmt.Errorf("not started by the service manager: `run --service` is what the installed service runs; in a terminal use `carrel run` (%w)", err)
		}
		return err
	}
	return m.err
}

// Execute is called by the service manager's dispatcher.
func (m *scm) Execute(_ []string, r <-chan winsvc.ChangeRequest, changes chan<- winsvc.Status) (bool, uint32) {
	changes <- winsvc.Status{State: winsvc.StartPending}
	if err := m.p.Start(m.s); err != nil {
		m.err = err
		return true, 1
	}
	changes <- winsvc.Status{State: winsvc.Running, Accepts: winsvc.AcceptStop | winsvc.AcceptShutdown}
	for c := range r {
		switch c.Cmd {
		case winsvc.Interrogate:
			changes <- c.CurrentStatus
		case winsvc.Stop, winsvc.Shutdown:
			// The wait hint tells the manager how long the clean stop
			// (final checkpoint, databases closed) may take before it
			// gives up on the service.
			changes <- winsvc.Status{State: winsvc.StopPending, WaitHint: uint32((StopTimeout + 5*time.Second).Milliseconds())}
			if err := m.p.Stop(m.s); err != nil {
				m.err = err
				return true, 2
			}
			return false, 0
		}
	}
	return false, 0
}
