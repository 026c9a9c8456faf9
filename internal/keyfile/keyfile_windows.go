package keyfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// temp is a temporary file being written. It is opened without sharing
// and stays open until it has its name (it is renamed through its own
// handle), so removeLeftovers cannot take it meanwhile.
type temp struct {
	f    *os.File
	h    windows.Handle
	path string
}

func createTemp(dir, base, sddl string) (*temp, error) {
	var sa *windows.SecurityAttributes
	if sddl != "" {
		sd, err := windows.SecurityDescriptorFromString(sddl)
		if err != nil {
			return nil, fmt.Errorf("building the file's access list: %w", err)
		}
		sa = &windows.SecurityAttributes{Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), SecurityDescriptor: sd}
	}
	for range 16 {
		name, err := tempName(base)
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, name)
		p16, err := windows.UTF16PtrFromString(p)
		if err != nil {
			return nil, err
		}
		// The access list is set at creation: setting it afterwards would
		// leave a moment in which the folder's inherited rights apply.
		h, err := windows.CreateFile(p16, windows.GENERIC_WRITE|windows.DELETE, 0, sa,
			windows.CREATE_NEW, windows.FILE_ATTRIBUTE_NORMAL, 0)
		if errors.Is(err, windows.ERROR_FILE_EXISTS) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "create", Path: p, Err: err}
		}
		return &temp{f: os.NewFile(uintptr(h), p), h: h, path: p}, nil
	}
	return nil, fmt.Errorf("no free temporary name for %s in %s", base, dir)
}

// fileRenameInfo is FILE_RENAME_INFO, followed in memory by the rest of
// the name.
type fileRenameInfo struct {
	ReplaceIfExists uint32
	RootDirectory   windows.Handle
	FileNameLength  uint32
	FileName        [1]uint16
}

// name renames the synced temporary file to path through its handle,
// replacing an existing file only with replace. It closes the file.
func (t *temp) name(path string, replace bool) error {
	defer t.f.Close()
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	name, err := windows.UTF16FromString(abs)
	if err != nil {
		return err
	}
	size := int(unsafe.Offsetof(fileRenameInfo{}.FileName)) + 2*len(name)
	size = max(size, int(unsafe.Sizeof(fileRenameInfo{})))
	buf := make([]uint64, (size+7)/8) // aligned for the struct
	info := (*fileRenameInfo)(unsafe.Pointer(&buf[0]))
	if replace {
		info.ReplaceIfExists = 1
	}
	info.FileNameLength = uint32(2 * (len(name) - 1)) // bytes, without the NUL
	copy(unsafe.Slice(&info.FileName[0], len(name)), name)
	err = windows.SetFileInformationByHandle(t.h, windows.FileRenameInfo, (*byte)(unsafe.Pointer(info)), uint32(size))
	if errors.Is(err, windows.ERROR_ALREADY_EXISTS) || errors.Is(err, windows.ERROR_FILE_EXISTS) {
		err = fs.ErrExist
	}
	if err != nil {
		return &fs.PathError{Op: "rename", Path: path, Err: err}
	}
	return nil
}

// discard removes a temporary file that never got its name.
func (t *temp) discard() {
	t.f.Close()
	os.Remove(t.path)
}

// removeIfAbandoned removes the temporary file at p; one another process
// still writes is open without sharing, and the removal fails.
func removeIfAbandoned(p string) { os.Remove(p) }

// syncDir does nothing: Windows has no folder fsync; NTFS journals the
// rename itself.
func syncDir(string) error { return nil }
