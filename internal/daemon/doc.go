// Package daemon is the running carrel service: what `carrel run` and the
// installed service execute.
//
// It owns the lifecycle — lock the data folder, open the audit log and the
// booking register, recover from an unclean stop, serve the local API,
// apply booking retention every hour, follow the config file, make signed
// checkpoints and have the witnesses cosign them (package witness), and
// shut down cleanly — and it is where the parts are wired
// together. It holds no domain rules itself: bookings are judged by
// package booking, config by package config, cases by package misuse.
package daemon
