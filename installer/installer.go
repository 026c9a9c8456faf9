// Package installer holds the files that put carrel on a PC: the systemd
// unit (used by `carrel service install` and by the .deb) and, under
// windows/, the MSI source. Embedding them here keeps one copy of each.
package installer

import _ "embed"

// SystemdUnit is the template of carrel's hardened systemd unit, in the
// template language of github.com/kardianos/service: {{Path}},
// {{Arguments}}, {{Description}} and the cmd / cmdEscape filters.
//
//go:embed linux/carrel.service.tmpl
var SystemdUnit string
