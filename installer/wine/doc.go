// Package wine runs carrel on Windows as far as a Linux test machine can:
// the cross-compiled carrel.exe (built as `make windows` builds it) and its
// MSI (built as `make msi` builds it) under Wine, Debian's wine 8, in a
// Wine prefix of their own per test. It holds only tests and their
// harness (harness_test.go): the CLI, the daemon and its named pipe (and a
// program that takes the pipe's name first), the Windows service manager,
// Windows Installer's install, upgrade, downgrade refusal and uninstall of
// the MSI, and capture with whatever wpcap.dll a PC has.
//
// Where Wine differs from Windows, the test says at that step what it
// cannot check and why; the README's Windows sections claim only what
// these tests show. Npcap's driver cannot run under Wine; carrel's capture
// code for Windows runs against Wine's own wpcap.dll, which hands capture
// to the Linux host's libpcap (npcap_test.go).
package wine
