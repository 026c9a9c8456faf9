// Package pack builds carrel's installable packages from a built binary:
// the Debian package (Deb) with dpkg-deb, and the Windows MSI (MSI) with
// wixl from msitools, plus the version resource that carrel.exe carries
// (VersionResource) and Authenticode signing with osslsigncode (Sign).
//
// The package contents come from one place each: the systemd unit from
// internal/svc.RenderUnit, the default config from internal/config, the
// folder ACL from internal/config.SecureACLArgs, the maintainer scripts
// and the WiX source from installer/. The tests judge the results with the
// tools Debian and Windows judge them with: lintian, dpkg in a debootstrap
// root, msiinfo, osslsigncode.
//
// It is used by installer/mkpkg (make deb, make msi) and by its tests; the
// carrel binary never imports it.
package pack
