package seal

import "os"

// createPrivate creates path for writing, mode 0600, failing if it exists
// (O_EXCL: also when it is a symlink, so a key is never written elsewhere).
func createPrivate(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}
