// Package wine runs carrel on Windows as far as a Linux test machine can:
// the cross-compiled carrel.exe (built as `make windows` builds it) and its
// MSI (built as `make msi` builds it) under Wine, Debian's wine 8, in a
// Wine prefix of their own per test. It holds only tests and their
// harness (harness_test.go): the CLI, the daemon and its named pipe, the
// Windows service manager, and Windows Installer's install, upgrade,
// downgrade refusal and uninstall of the MSI.
//
// Where Wine differs from Windows, the test says at that step what it
// cannot check and why; the README's Windows sections claim only what
// these tests show. Capture through Npcap cannot run under Wine: its code
// is compiled and vetted for Windows by `make lint` and `make windows`.
package wine
