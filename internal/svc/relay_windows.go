package svc

// InstallRelay does nothing on Windows: the service reaches its witnesses
// itself (the README says how to limit carrel.exe's outbound traffic with
// Windows Firewall).
func InstallRelay(exe, configPath string) error { return nil }

// UninstallRelay does nothing on Windows.
func UninstallRelay() error { return nil }
