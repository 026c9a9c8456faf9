package pack

import (
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// ManPage returns carrel(1): the command overview that `carrel --help`
// prints (so the page cannot drift from the program), framed by the
// files a package installs.
func ManPage(bin string, v Version, date time.Time) ([]byte, error) {
	help, err := exec.Command(bin, "--help").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --help: %w", bin, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, ".TH CARREL 1 %q %q \"carrel manual\"\n", date.UTC().Format("2006-01-02"), "carrel "+roff(v.Debian()))
	b.WriteString(".SH NAME\ncarrel \\- booking\\-time register for public library PCs\n")
	b.WriteString(".SH SYNOPSIS\n.B carrel\n.I command\n.RI [ flags ]\n.RI [ args ]\n")
	b.WriteString(".SH DESCRIPTION\n.nf\n")
	for _, l := range strings.Split(strings.TrimRight(string(help), "\n"), "\n") {
		b.WriteString(roff(l) + "\n")
	}
	b.WriteString(".fi\n.SH FILES\n")
	for _, f := range [][2]string{
		{DebConfig, "the configuration; only root may read or write it"},
		{DebDataDir, "bookings, sealed traffic, the audit log and keys; only root may read it"},
		{"/run/carrel/api.sock", "the local API; members of the group carrel\\-booking may use it"},
	} {
		fmt.Fprintf(&b, ".TP\n.I %s\n%s\n", roff(f[0]), f[1])
	}
	b.WriteString(".SH SEE ALSO\n.BR systemctl (1),\n.BR journalctl (1),\n.I " + DebDocDir + "/README.md\n")
	return []byte(b.String()), nil
}

// roff escapes text for a man page line.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
