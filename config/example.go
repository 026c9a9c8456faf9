// Package config holds the example configuration shipped with carrel,
// config/carrel.example.toml, so that the binary can print it
// (`carrel config init`) and the installers can install it.
package config

import _ "embed"

// Example is the fully commented default configuration.
//
//go:embed carrel.example.toml
var Example []byte
