package pack

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/mod/module"
)

// licenseFiles are the names under which Go modules keep their licence.
var licenseFiles = []string{"LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "COPYING", "COPYING.md"}

// license is one licence text and its Debian short name.
type license struct {
	Name string
	Text string // the full text; empty for licences in /usr/share/common-licenses
}

// classify names the licence in text, or fails: a dependency under a
// licence nobody has looked at must not slip into the package unnoticed.
func classify(text string) (license, error) {
	flat := strings.Join(strings.Fields(text), " ")
	has := func(s string) bool { return strings.Contains(flat, s) }
	switch {
	case has("Redistribution and use in source and binary forms") && has("Neither the name"):
		return license{"BSD-3-Clause", text}, nil
	case has("Redistribution and use in source and binary forms"):
		return license{"BSD-2-Clause", text}, nil
	case has("Permission is hereby granted, free of charge"):
		return license{"Expat", text}, nil
	case has("provided 'as-is', without any express or implied warranty"):
		return license{"Zlib", text}, nil
	case has("Permission to use, copy, modify, and/or distribute this software for any purpose"):
		return license{"ISC", text}, nil
	case has("Apache License") && has("Version 2.0"):
		return license{Name: "Apache-2.0"}, nil
	case has("Mozilla Public License") && has("2.0"):
		return license{Name: "MPL-2.0"}, nil
	}
	return license{}, errors.New("licence not recognised")
}

var copyrightLine = regexp.MustCompile(`(?i)^\s*copyright\s*(?:\(c\)|©)?\s*(.+?)\s*$`)

// holders returns the copyright lines of a licence text.
func holders(text, fallback string) []string {
	var hs []string
	for _, l := range strings.Split(text, "\n") {
		if m := copyrightLine.FindStringSubmatch(l); m != nil && !strings.HasPrefix(strings.ToLower(m[1]), "notice") {
			hs = append(hs, m[1])
		}
	}
	if len(hs) == 0 {
		hs = []string{fallback}
	}
	return hs
}

// goEnv asks the go command for one setting (GOMODCACHE, GOROOT).
func goEnv(key string) (string, error) {
	if v := os.Getenv(key); v != "" {
		return v, nil
	}
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", key, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func readLicense(dir string) (string, error) {
	for _, name := range licenseFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			return string(b), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("no licence file in %s", dir)
}

// extraNotices are licences of code a module bundles besides its own.
var extraNotices = map[string]struct{ files, copyright, license, text string }{
	"github.com/mattn/go-sqlite3": {"sqlite3-binding.c sqlite3-binding.h", "none (public domain)", "public-domain",
		"The SQLite amalgamation bundled with go-sqlite3 is in the public domain:\n" +
			"\"The author disclaims copyright to this source code.\""},
}

// Copyright returns the machine-readable Debian copyright file of the
// carrel binary at bin: carrel's own licence (repoRoot/LICENSE) and, for
// the Go standard library and every module linked into bin (from its
// build information), the module's copyright lines and licence text, read
// from the module cache.
func Copyright(bin, repoRoot string) ([]byte, error) {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("reading the build information of %s: %w", bin, err)
	}
	var b bytes.Buffer
	b.WriteString("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n" +
		"Upstream-Name: carrel\n" +
		"Source: https://github.com/carrel-lib/carrel\n" +
		"Comment: /usr/bin/carrel is a Go program. The Go standard library and the\n" +
		" Go modules below are compiled into it; each Files field names a module.\n\n")

	own, err := os.ReadFile(filepath.Join(repoRoot, "LICENSE"))
	switch {
	case err == nil:
		l, err := classify(string(own))
		if err != nil {
			return nil, fmt.Errorf("carrel's LICENSE: %w", err)
		}
		writeFiles(&b, "*", holders(string(own), "the carrel authors"), l)
	case errors.Is(err, fs.ErrNotExist):
		// No licence has been chosen yet: say so rather than invent one.
		writeFiles(&b, "*", []string{"the carrel authors"}, license{"carrel-unlicensed",
			"The carrel authors have not published a licence for carrel yet.\n" +
				"Until they do, no licence is granted beyond what the law allows."})
	default:
		return nil, err
	}

	goroot, err := goEnv("GOROOT")
	if err != nil {
		return nil, err
	}
	text, err := readLicense(goroot)
	if err != nil {
		return nil, fmt.Errorf("the Go standard library: %w", err)
	}
	l, err := classify(text)
	if err != nil {
		return nil, fmt.Errorf("the Go standard library: %w", err)
	}
	writeFiles(&b, "go/"+info.GoVersion+"/*", holders(text, "The Go Authors"), l)

	modcache, err := goEnv("GOMODCACHE")
	if err != nil {
		return nil, err
	}
	for _, m := range info.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		dir, err := moduleDir(modcache, m.Path, m.Version)
		if err != nil {
			return nil, err
		}
		text, err := readLicense(dir)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w (run `go mod download %s`)", m.Path, err, m.Path)
		}
		l, err := classify(text)
		if err != nil {
			return nil, fmt.Errorf("module %s@%s: %w; read it, and teach installer/pack/copyright.go its name", m.Path, m.Version, err)
		}
		writeFiles(&b, m.Path+"/*", holders(text, "the authors of "+m.Path), l)
		if x, ok := extraNotices[m.Path]; ok {
			var paths []string
			for _, f := range strings.Fields(x.files) {
				paths = append(paths, m.Path+"/"+f)
			}
			writeFiles(&b, strings.Join(paths, " "), []string{x.copyright}, license{x.license, x.text})
		}
	}
	return b.Bytes(), nil
}

func moduleDir(modcache, path, version string) (string, error) {
	ep, err := module.EscapePath(path)
	if err != nil {
		return "", fmt.Errorf("module %s: %w", path, err)
	}
	ev, err := module.EscapeVersion(version)
	if err != nil {
		return "", fmt.Errorf("module %s@%s: %w", path, version, err)
	}
	return filepath.Join(modcache, ep+"@"+ev), nil
}

// writeFiles writes one Files paragraph with its licence text inline.
func writeFiles(b *bytes.Buffer, files string, copyright []string, l license) {
	fmt.Fprintf(b, "Files: %s\nCopyright: %s\n", files, strings.Join(copyright, "\n "))
	b.WriteString(field("License", l.Name, l.Text))
	if l.Text == "" {
		fmt.Fprintf(b, " On Debian systems the full text is in /usr/share/common-licenses/%s.\n", l.Name)
	}
	b.WriteString("\n")
}

// field formats a deb822 multi-line field: continuation lines start with a
// space, empty lines become " .".
func field(name, first, text string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", name, first)
	text = strings.Trim(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	if text == "" {
		return b.String()
	}
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimRight(strings.ReplaceAll(l, "\t", "    "), " ")
		if l == "" {
			l = "."
		}
		b.WriteString(" " + l + "\n")
	}
	return b.String()
}
