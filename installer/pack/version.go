package pack

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is carrel's version as `git describe --tags --always --dirty`
// tells it (the string the binary reports), with the number of commits on
// HEAD for builds that have no tag yet. Each package format needs its own
// spelling of it, and each must sort the way the commits do, so that
// upgrades go forward.
type Version struct {
	Describe string // as given, e.g. v1.2.3-4-gabc1234-dirty
	// From the nearest tag vMAJOR.MINOR.PATCH; all zero without one.
	Major, Minor, Patch int
	Tagged              bool
	Ahead               int    // commits since the tag
	Hash                string // abbreviated commit hash, when describe gave one
	Dirty               bool
	Commits             int // commits on HEAD (git rev-list --count HEAD)
}

var (
	describeTagged = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(?:-(\d+)-g([0-9a-f]+))?$`)
	describeHash   = regexp.MustCompile(`^[0-9a-f]{4,40}$`)
	notDebian      = regexp.MustCompile(`[^A-Za-z0-9.+~]+`)
)

// ParseVersion reads the output of git describe. It never fails: a string
// it does not recognise (a hand-set VERSION, "dev") becomes version 0.0.0
// with the string kept, cleaned, in the Debian version.
func ParseVersion(describe string, commits int) Version {
	v := Version{Describe: describe, Commits: max(commits, 0)}
	s := strings.TrimSpace(describe)
	if rest, ok := strings.CutSuffix(s, "-dirty"); ok {
		v.Dirty, s = true, rest
	}
	if m := describeTagged.FindStringSubmatch(s); m != nil {
		v.Major, v.Minor, v.Patch = atoi(m[1]), atoi(m[2]), atoi(m[3])
		v.Tagged = true
		if m[4] != "" {
			v.Ahead, v.Hash = atoi(m[4]), m[5]
		}
	} else if describeHash.MatchString(s) {
		v.Hash = s
	}
	return v
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// Debian is the version of the .deb, a native package's version:
//
//	v1.2.3                 1.2.3
//	v1.2.3-4-gabc1234      1.2.3+git4.abc1234
//	abc1234 (no tag yet)   0.0.0~git17.abc1234  (17 commits on HEAD)
//	…-dirty                ….dirty
//
// "~" sorts before anything, so untagged builds come before 0.0.0 and
// after each other by commit count; "+" sorts after the tag it extends.
func (v Version) Debian() string {
	var b strings.Builder
	switch {
	case v.Tagged:
		fmt.Fprintf(&b, "%d.%d.%d", v.Major, v.Minor, v.Patch)
		if v.Ahead > 0 {
			fmt.Fprintf(&b, "+git%d.%s", v.Ahead, v.Hash)
		}
	case v.Hash != "":
		fmt.Fprintf(&b, "0.0.0~git%d.%s", v.Commits, v.Hash)
	default:
		b.WriteString("0.0.0")
		if s := strings.Trim(notDebian.ReplaceAllString(strings.TrimSpace(v.Describe), "."), ".+~"); s != "" {
			b.WriteString("~" + s)
		}
	}
	if v.Dirty {
		b.WriteString(".dirty")
	}
	return b.String()
}

// MSI is the ProductVersion of the MSI: three numbers, the first two at most
// 255 and the third at most 65535; Windows Installer compares only these
// three. A tagged build uses its tag; an untagged one 0.0.COMMITS.
func (v Version) MSI() string {
	q := v.Quad()
	return fmt.Sprintf("%d.%d.%d", q[0], q[1], q[2])
}

// Quad is the four-part file version of carrel.exe's version resource:
// the MSI version and then the commits since the tag.
func (v Version) Quad() [4]uint16 {
	if !v.Tagged {
		return [4]uint16{0, 0, clamp(v.Commits, 65535), 0}
	}
	return [4]uint16{clamp(v.Major, 255), clamp(v.Minor, 255), clamp(v.Patch, 65535), clamp(v.Ahead, 65535)}
}

// FileVersion is Quad as text, a.b.c.d.
func (v Version) FileVersion() string {
	q := v.Quad()
	return fmt.Sprintf("%d.%d.%d.%d", q[0], q[1], q[2], q[3])
}

func clamp(n, hi int) uint16 { return uint16(min(max(n, 0), hi)) }
