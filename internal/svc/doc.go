// Package svc wraps github.com/kardianos/service: it installs, removes,
// starts and stops carrel as a systemd unit or a Windows service, and runs
// the daemon under the service manager with logs going to journald (via
// standard error) or the Windows event log.
//
// Start never blocks: it starts the daemon in a goroutine. Stop cancels the
// daemon and waits for its clean shutdown (bounded by StopTimeout).
//
// It knows nothing of bookings or traffic; it is given a run function.
package svc
