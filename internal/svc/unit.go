package svc

import (
	"fmt"
	"strings"
	"text/template"

	"github.com/carrel-lib/carrel/installer"
)

// RenderUnit renders the systemd unit for exe started with args, exactly as
// `carrel service install` writes it; the .deb build uses it too, so both
// install the same hardened unit.
func RenderUnit(exe string, args []string) (string, error) {
	c := Config(exe, "")
	funcs := template.FuncMap{
		"Description": func() string { return c.Description },
		"Path":        func() string { return exe },
		"Arguments":   func() []string { return args },
		"cmd":         systemdQuote,
		"cmdEscape":   func(s string) string { return strings.ReplaceAll(s, " ", `\x20`) },
	}
	t, err := template.New("unit").Funcs(funcs).Parse(installer.SystemdUnit)
	if err != nil {
		return "", fmt.Errorf("parsing unit template: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, nil); err != nil {
		return "", fmt.Errorf("rendering unit: %w", err)
	}
	return b.String(), nil
}

// RelayUnitName is the relay's unit (internal/witness, relay.go).
const RelayUnitName = "carrel-witness.service"

// RenderRelayUnit renders carrel-witness.service for exe and the config at
// configPath, as `carrel service install` and the .deb install it.
func RenderRelayUnit(exe, configPath string) (string, error) {
	funcs := template.FuncMap{
		"Path":      func() string { return exe },
		"Config":    func() string { return configPath },
		"cmd":       systemdQuote,
		"cmdEscape": func(s string) string { return strings.ReplaceAll(s, " ", `\x20`) },
	}
	t, err := template.New("relay").Funcs(funcs).Parse(installer.RelayUnit)
	if err != nil {
		return "", fmt.Errorf("parsing the relay unit template: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, nil); err != nil {
		return "", fmt.Errorf("rendering the relay unit: %w", err)
	}
	return b.String(), nil
}

// systemdQuote quotes one ExecStart argument when it needs it.
func systemdQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;$%") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `$$`, `%`, `%%`)
	return `"` + r.Replace(s) + `"`
}
