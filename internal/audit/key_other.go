//go:build !windows

package audit

// keySDDL is for Windows only: elsewhere the key file is mode 0600.
const keySDDL = ""
