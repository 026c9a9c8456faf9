package seal

// identitySDDL is for Windows only: on Linux the identity file is mode
// 0600.
func identitySDDL() (string, error) { return "", nil }
