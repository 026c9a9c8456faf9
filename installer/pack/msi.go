package pack

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/carrel-lib/carrel/installer"
	"github.com/carrel-lib/carrel/internal/config"
)

// UpgradeCode identifies carrel to Windows Installer across all versions;
// upgrades find the installed carrel by it. Never change it.
const UpgradeCode = "c70e1864-a0be-4441-80a7-f2bb09596380"

// MSIOptions says what goes into the MSI.
type MSIOptions struct {
	Exe     string // carrel.exe for windows/amd64; empty: BuildWindows makes it
	Repo    string // the module, for BuildWindows
	Version Version
	OutDir  string
	Sign    *Signer // sign carrel.exe and the MSI; nil: unsigned
}

// MSI builds carrel.msi in o.OutDir with wixl and returns its path.
func MSI(o MSIOptions) (string, error) {
	stage, err := os.MkdirTemp("", "carrel-msi-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	exe := filepath.Join(stage, "carrel.exe")
	if o.Exe == "" {
		o.Exe = filepath.Join(stage, "unsigned.exe")
		if err := BuildWindows(o.Repo, o.Version, o.Exe); err != nil {
			return "", err
		}
	}
	if o.Sign != nil {
		err = o.Sign.Sign(o.Exe, exe)
	} else {
		err = copyFile(o.Exe, exe)
	}
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(stage, "carrel.wxs"), installer.WiX, 0o644); err != nil {
		return "", err
	}
	msi := filepath.Join(stage, "carrel.msi")
	wixl := exec.Command("wixl", "-a", "x64",
		"-D", "Version="+o.Version.MSI(),
		"-D", "UpgradeCode="+UpgradeCode,
		"-D", "AclArgs="+strings.Join(config.SecureACLArgs, " "),
		"-o", msi, "carrel.wxs")
	wixl.Dir = stage
	var stderr bytes.Buffer
	wixl.Stderr = &stderr
	err = wixl.Run()
	// wixl warns, and goes on, about attributes it does not know: each
	// would be a silently missing feature of the MSI.
	if err != nil || stderr.Len() > 0 {
		return "", fmt.Errorf("wixl: %v: %s", err, stderr.Bytes())
	}
	args := []string{msi}
	for _, q := range msiFixups(o.Version) {
		args = append(args, "-q", q)
	}
	if out, err := exec.Command("msibuild", args...).CombinedOutput(); err != nil || len(out) > 0 {
		return "", fmt.Errorf("msibuild: %v: %s", err, out)
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(o.OutDir, "carrel.msi")
	if o.Sign != nil {
		return out, o.Sign.Sign(msi, out)
	}
	return out, copyFile(msi, out)
}

// msiFixups are SQL statements for msibuild that add what wixl 0.101
// cannot express:
//
//   - SecureCustomProperties lists PCID and RECIPIENT (WiX's
//     Property/@Secure), so that they reach the deferred custom actions
//     also when a non-administrator runs a managed install;
//   - the upgrade row includes its maximum (UpgradeVersion/@IncludeMaximum,
//     MigrateFeatures), so that reinstalling a rebuild of the same version
//     replaces the installed one instead of installing a second copy.
func msiFixups(v Version) []string {
	return []string{
		"UPDATE `Property` SET `Value` = 'WIX_UPGRADE_DETECTED;WIX_DOWNGRADE_DETECTED;PCID;RECIPIENT' WHERE `Property` = 'SecureCustomProperties'",
		// Attributes is part of the Upgrade table's key: replace the row.
		"DELETE FROM `Upgrade` WHERE `ActionProperty` = 'WIX_UPGRADE_DETECTED'",
		fmt.Sprintf("INSERT INTO `Upgrade` (`UpgradeCode`, `VersionMin`, `VersionMax`, `Attributes`, `ActionProperty`) "+
			"VALUES ('{%s}', '0.0.0', '%s', %d, 'WIX_UPGRADE_DETECTED')",
			strings.ToUpper(UpgradeCode), v.MSI(), upgradeMigrateFeatures|upgradeMinInclusive|upgradeMaxInclusive),
	}
}

// Upgrade table attributes.
const (
	upgradeMigrateFeatures = 0x001
	upgradeOnlyDetect      = 0x002
	upgradeMinInclusive    = 0x100
	upgradeMaxInclusive    = 0x200
)

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
