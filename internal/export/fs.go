package export

import "os"

// syncPath opens path with flag and fsyncs it (a file's data, or a
// folder's names).
func syncPath(path string, flag int) error {
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
