package config

import (
	"os"
	"time"

	"github.com/BurntSushi/toml"
)

// Defaults for keys that are absent. A key that is present is never
// replaced by its default, even when its value is invalid: absent is not the
// same as wrong.
const (
	DefaultBookingRetention   = 28 * 24 * time.Hour
	DefaultCheckpointInterval = 15 * time.Minute
	DefaultMaxCaseDays        = 30
	// MaxCaseDaysCeiling is the hard limit on a case's length; config cannot raise it.
	MaxCaseDaysCeiling      = 90
	DefaultMaxBytes         = 4 << 30
	DefaultRingSize         = 8 << 20
	DefaultTrafficRetention = 30 * 24 * time.Hour
	DefaultClientGroup      = "carrel-booking"
	DefaultWitnessQuorum    = 1
)

// Default returns the configuration carrel uses for every absent key.
func Default() *Config {
	c := &Config{Version: CurrentVersion}
	c.applyDefaults(toml.MetaData{})
	return c
}

func (c *Config) applyDefaults(md toml.MetaData) {
	set := func(key ...string) bool { return md.IsDefined(key...) }
	if !set("pc", "id") {
		c.PC.ID = hostname()
	}
	if !set("storage", "data_dir") {
		c.Storage.DataDir = DefaultDataDir()
	}
	if !set("booking", "retention") {
		c.Booking.Retention = Duration(DefaultBookingRetention)
	}
	if !set("booking", "api_socket") {
		c.Booking.APISocket = DefaultSocket
	}
	if !set("booking", "api_pipe") {
		c.Booking.APIPipe = DefaultPipe
	}
	if !set("booking", "client_group") {
		c.Booking.ClientGroup = DefaultClientGroup
	}
	if !set("audit", "checkpoint_interval") {
		c.Audit.CheckpointInterval = Duration(DefaultCheckpointInterval)
	}
	if !set("audit", "witness_quorum") {
		c.Audit.WitnessQuorum = DefaultWitnessQuorum
	}
	if !set("capture", "max_case_days") {
		c.Capture.MaxCaseDays = DefaultMaxCaseDays
	}
	if !set("capture", "max_bytes") {
		c.Capture.MaxBytes = DefaultMaxBytes
	}
	if !set("capture", "ring_size") {
		c.Capture.RingSize = DefaultRingSize
	}
	if !set("capture", "traffic_retention") {
		c.Capture.TrafficRetention = Duration(DefaultTrafficRetention)
	}
}

// hostname is the default PC id. A host name that is not a valid id is
// still returned; Validate then says so and names the key to set.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}
