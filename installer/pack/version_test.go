package pack

import (
	"os/exec"
	"regexp"
	"testing"

	"github.com/carrel-lib/carrel/internal/testenv"
)

func TestVersionSpellings(t *testing.T) {
	tests := []struct {
		describe string
		commits  int
		deb, msi string
		quad     [4]uint16
	}{
		{"v1.2.3", 40, "1.2.3", "1.2.3", [4]uint16{1, 2, 3, 0}},
		{"1.2.3", 40, "1.2.3", "1.2.3", [4]uint16{1, 2, 3, 0}},
		{"v1.2.3-4-gabc1234", 44, "1.2.3+git4.abc1234", "1.2.3", [4]uint16{1, 2, 3, 4}},
		{"v1.2.3-4-gabc1234-dirty", 44, "1.2.3+git4.abc1234.dirty", "1.2.3", [4]uint16{1, 2, 3, 4}},
		{"a642e2e", 17, "0.0.0~git17.a642e2e", "0.0.17", [4]uint16{0, 0, 17, 0}},
		{"a642e2e-dirty", 17, "0.0.0~git17.a642e2e.dirty", "0.0.17", [4]uint16{0, 0, 17, 0}},
		{"dev", 0, "0.0.0~dev", "0.0.0", [4]uint16{0, 0, 0, 0}},
		{"", 0, "0.0.0", "0.0.0", [4]uint16{0, 0, 0, 0}},
		{"release 2/β", 3, "0.0.0~release.2", "0.0.3", [4]uint16{0, 0, 3, 0}},
		{"v300.2.70000", 1, "300.2.70000", "255.2.65535", [4]uint16{255, 2, 65535, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.describe, func(t *testing.T) {
			v := ParseVersion(tt.describe, tt.commits)
			if got := v.Debian(); got != tt.deb {
				t.Errorf("Debian() = %q; want %q", got, tt.deb)
			}
			if got := v.MSI(); got != tt.msi {
				t.Errorf("MSI() = %q; want %q", got, tt.msi)
			}
			if got := v.Quad(); got != tt.quad {
				t.Errorf("Quad() = %v; want %v", got, tt.quad)
			}
		})
	}
}

// TestDebianVersionsValidAndOrdered lets dpkg judge the versions: each must
// be a valid native version, and later commits must sort later.
func TestDebianVersionsValidAndOrdered(t *testing.T) {
	dpkg := testenv.NeedTool(t, "dpkg")
	ordered := []Version{
		ParseVersion("abc1234", 5),
		ParseVersion("abc1235", 6),
		ParseVersion("abc1235-dirty", 6),
		ParseVersion("v0.1.0", 7),
		ParseVersion("v0.1.0-1-gdef0001", 8),
		ParseVersion("v0.1.0-12-gdef0002", 19),
		ParseVersion("v0.1.1", 20),
		ParseVersion("v0.2.0", 25),
		ParseVersion("v1.0.0", 40),
	}
	for i, v := range ordered {
		if out, err := exec.Command(dpkg, "--validate-version", v.Debian()).CombinedOutput(); err != nil {
			t.Errorf("dpkg --validate-version %s: %v %s", v.Debian(), err, out)
		}
		if i == 0 {
			continue
		}
		prev := ordered[i-1].Debian()
		if err := exec.Command(dpkg, "--compare-versions", prev, "lt", v.Debian()).Run(); err != nil {
			t.Errorf("dpkg says %s is not older than %s", prev, v.Debian())
		}
	}
}

// FuzzParseVersion: whatever VERSION holds, the package versions are well
// formed (the MSI and the .deb build refuse nothing and never panic).
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"v1.2.3-4-gabc1234-dirty", "a642e2e", "dev", "v1.2", "-dirty", "v01.002.3"} {
		f.Add(s, 3)
	}
	debian := regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
	msi := regexp.MustCompile(`^([0-9]|[1-9][0-9]{1,2})\.([0-9]|[1-9][0-9]{1,2})\.([0-9]|[1-9][0-9]{1,4})$`)
	f.Fuzz(func(t *testing.T, describe string, commits int) {
		v := ParseVersion(describe, commits)
		if d := v.Debian(); !debian.MatchString(d) {
			t.Errorf("ParseVersion(%q).Debian() = %q; not a native Debian version", describe, d)
		}
		q := v.Quad()
		if m := v.MSI(); !msi.MatchString(m) || q[0] > 255 || q[1] > 255 {
			t.Errorf("ParseVersion(%q).MSI() = %q; not an MSI ProductVersion", describe, m)
		}
	})
}
