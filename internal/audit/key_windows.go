package audit

import (
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// keySDDL grants full access to SYSTEM and Administrators only, and blocks
// inheritance from the folder (P), so no other account can read the key.
const keySDDL = "D:P(A;;FA;;;SY)(A;;FA;;;BA)"

// createPrivate creates path with keySDDL as its security descriptor from
// the start: setting the ACL afterwards would leave a moment in which the
// folder's inherited rights apply.
func createPrivate(path string) (*os.File, error) {
	sd, err := windows.SecurityDescriptorFromString(keySDDL)
	if err != nil {
		return nil, err
	}
	sa := &windows.SecurityAttributes{
		Length:             uint32(unsafe.Sizeof(windows.SecurityAttributes{})),
		SecurityDescriptor: sd,
	}
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateFile(p, windows.GENERIC_WRITE, 0, sa, windows.CREATE_NEW, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

// syncDir is a no-op: Windows has no directory fsync; NTFS journals the
// rename itself.
func syncDir(string) error { return nil }
