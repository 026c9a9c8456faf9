// Package installer holds the files that put carrel on a PC: the systemd
// unit (used by `carrel service install` and by the .deb), the .deb's
// maintainer scripts and, under windows/, the MSI source. Embedding them
// here keeps one copy of each; installer/pack builds the packages.
package installer

import "embed"

// SystemdUnit is the template of carrel's hardened systemd unit, in the
// template language of github.com/kardianos/service: {{Path}},
// {{Arguments}}, {{Description}} and the cmd / cmdEscape filters.
//
//go:embed linux/carrel.service.tmpl
var SystemdUnit string

// RelayUnit is the template of carrel-witness.service, the relay through
// which carrel reaches its witnesses ({{Path}}, {{Config}}, cmd,
// cmdEscape); internal/svc renders it.
//
//go:embed linux/carrel-witness.service.tmpl
var RelayUnit string

// Debian holds the .deb's maintainer scripts (postinst, prerm, postrm) and
// debconf templates, under debian/.
//
//go:embed debian
var Debian embed.FS

// WiX is the WiX 3 source of the MSI, in the subset wixl understands.
//
//go:embed windows/carrel.wxs
var WiX []byte
