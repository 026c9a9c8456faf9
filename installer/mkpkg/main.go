// Command mkpkg builds carrel's packages; the Makefile runs it:
//
//	go run ./installer/mkpkg deb    --version V --commits N --date UNIX --out build
//	go run ./installer/mkpkg msi    --version V --commits N --out build [--sign-cert C --sign-key K]
//	go run ./installer/mkpkg winres --version V --commits N --out build/carrel-res.o
//
// V is `git describe --tags --always --dirty`, N `git rev-list --count HEAD`,
// UNIX the commit time. deb and msi build the binary they package (see
// installer/pack/build.go) unless --bin / --exe names one. It prints the
// path of what it built. The work is done by installer/pack.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/carrel-lib/carrel/installer/pack"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkpkg:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: mkpkg deb|winres|msi [flags]")
	}
	fs := flag.NewFlagSet("mkpkg "+args[0], flag.ContinueOnError)
	describe := fs.String("version", "dev", "`git describe` output")
	commits := fs.Int("commits", 0, "commits on HEAD")
	out := fs.String("out", "build", "output `folder` (winres: output file)")
	bin := fs.String("bin", "", "deb: package this Linux carrel `binary` instead of building one")
	date := fs.Int64("date", time.Now().Unix(), "deb: the commit time, Unix seconds")
	maintainer := fs.String("maintainer", "carrel developers <carrel@carrel-lib.invalid>", "deb: Maintainer field")
	repo := fs.String("repo", ".", "the repository `folder`")
	exe := fs.String("exe", "", "msi: package this carrel.exe instead of building one")
	cert := fs.String("sign-cert", "", "msi: sign carrel.exe and the MSI with this PEM certificate `file`")
	key := fs.String("sign-key", "", "msi: the PEM private key `file` of --sign-cert")
	stamp := fs.String("sign-timestamp", "", "msi: RFC 3161 time-stamping `URL` for the signatures")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	v := pack.ParseVersion(*describe, *commits)
	var path string
	var err error
	switch args[0] {
	case "deb":
		path, err = pack.Deb(pack.DebOptions{Binary: *bin, Version: v, Maintainer: *maintainer,
			Date: time.Unix(*date, 0), RepoRoot: *repo, OutDir: *out})
	case "winres":
		path, err = *out, pack.VersionResource(v, *out)
	case "msi":
		var sign *pack.Signer
		if *cert != "" || *key != "" {
			sign = &pack.Signer{Cert: *cert, Key: *key, Timestamp: *stamp}
		}
		path, err = pack.MSI(pack.MSIOptions{Exe: *exe, Repo: *repo, Version: v, OutDir: *out, Sign: sign})
	default:
		return fmt.Errorf("unknown package %q: want deb, winres or msi", args[0])
	}
	if err != nil {
		return err
	}
	fmt.Println(path)
	return nil
}
