package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows the owner and DACL of every folder and link on the way to a
// path are judged, as given and as resolved (each link's target is walked
// in turn, so the folder of every link followed is judged), up to and not
// including %ProgramData% or the drive root: both let Users create folders
// by default, and carrel's own folders are created without inheritance.
// The file or folder itself is then opened and judged by its handle
// (GetSecurityInfo), so what is judged is what is read or held.

// maxLinks bounds the links followed in one walk.
const maxLinks = 40

type winWalker struct {
	self        string
	programData string
	problems    []PathProblem
	links       int
}

func newWinWalker() *winWalker {
	return &winWalker{self: selfSID(), programData: filepath.Clean(os.Getenv("ProgramData"))}
}

// exempt reports whether path is a drive root or %ProgramData%.
func (w *winWalker) exempt(path string) bool {
	return filepath.Dir(path) == path || w.programData != "." && strings.EqualFold(filepath.Clean(path), w.programData)
}

func (w *winWalker) judge(path string) {
	if !w.exempt(path) {
		w.problems = append(w.problems, aclOf(path, w.self)...)
	}
}

// errMissing says the walk stopped at a component that does not exist.
type errMissing struct{ path string }

func (e *errMissing) Error() string { return e.path + ": no such file or folder" }
func (e *errMissing) Unwrap() error { return fs.ErrNotExist }

var errRefused = errors.New("refused")

// walk judges every component of p, following links by their targets, and
// returns the resolved path. With create, missing folders are made.
func (w *winWalker) walk(p string, create bool) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	vol := filepath.VolumeName(abs)
	rest := strings.FieldsFunc(abs[len(vol):], func(r rune) bool { return r == '\\' || r == '/' })
	cur := vol + `\`
	for i, name := range rest {
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) && create {
			if err = os.Mkdir(next, 0o700); err == nil || errors.Is(err, fs.ErrExist) {
				fi, err = os.Lstat(next)
			}
		}
		if errors.Is(err, fs.ErrNotExist) {
			w.judge(cur)
			return "", &errMissing{next}
		}
		if err != nil {
			return "", err
		}
		w.judge(next)
		if fi.Mode()&(fs.ModeSymlink|fs.ModeIrregular) != 0 {
			target, err := os.Readlink(next)
			if err != nil && fi.Mode()&fs.ModeSymlink == 0 {
				cur = next // a reparse point that is not a link (dedup, cloud file)
				continue
			}
			if err != nil {
				return "", err
			}
			if w.links++; w.links > maxLinks {
				w.problems = append(w.problems, PathProblem{Path: next, Why: "too many links (a loop?)"})
				return "", errRefused
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(cur, target)
			}
			return w.walk(filepath.Join(append([]string{target}, rest[i+1:]...)...), create)
		}
		cur = next
	}
	return cur, nil
}

func openConfig(path string) (*os.File, []PathProblem, error) {
	w := newWinWalker()
	real, err := w.walk(path, false)
	var missing *errMissing
	switch {
	case errors.As(err, &missing):
		return nil, nil, fmt.Errorf("reading config %q: %w", path, ErrNotFound)
	case errors.Is(err, errRefused):
		return nil, w.problems, nil
	case err != nil:
		return nil, nil, fmt.Errorf("reading config %q: %w", path, err)
	}
	// Opened without following a link swapped in since the walk, and
	// without FILE_SHARE_WRITE: nobody writes it while it is read.
	h, err := openHandle(real, windows.GENERIC_READ, windows.FILE_SHARE_READ, windows.FILE_FLAG_OPEN_REPARSE_POINT)
	if err != nil {
		return nil, nil, fmt.Errorf("reading config %q: %w", path, &fs.PathError{Op: "open", Path: real, Err: err})
	}
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		windows.CloseHandle(h)
		return nil, nil, fmt.Errorf("reading config %q: %w", path, err)
	}
	if info.FileAttributes&(windows.FILE_ATTRIBUTE_DIRECTORY|windows.FILE_ATTRIBUTE_REPARSE_POINT) != 0 {
		windows.CloseHandle(h)
		return nil, append(w.problems, PathProblem{Path: real, Why: "not a regular file"}), nil
	}
	w.problems = append(w.problems, aclOfHandle(real, h, w.self)...)
	return os.NewFile(uintptr(h), real), w.problems, nil
}

func openHandle(path string, access, share, flags uint32) (windows.Handle, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return windows.InvalidHandle, err
	}
	return windows.CreateFile(p, access, share, nil, windows.OPEN_EXISTING, flags, 0)
}

// OpenDataDir judges the data folder at path — the folder, and every
// folder and link on the way to it as given and as resolved — and holds it
// open without FILE_SHARE_DELETE, so that it cannot be renamed or replaced
// while carrel runs. With create, missing folders are made. It returns a
// *PermissionError when another account could change any of them, and
// wraps ErrNoDataDir when the folder does not exist and create is false.
func OpenDataDir(path string, create bool) (*DataDir, error) {
	w := newWinWalker()
	// A folder carrel creates itself is judged by the folder above it, as
	// before it existed; the installers give it carrel's own ACL.
	existed := true
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		existed = false
		if err := checkDir(w, path); err != nil {
			return nil, err
		}
		w = newWinWalker()
	}
	real, err := w.walk(path, create)
	var missing *errMissing
	switch {
	case errors.As(err, &missing):
		if len(w.problems) > 0 {
			return nil, permissionError(w.problems)
		}
		return nil, fmt.Errorf("data folder %q: %w", path, ErrNoDataDir)
	case errors.Is(err, errRefused):
		return nil, permissionError(w.problems)
	case err != nil:
		return nil, fmt.Errorf("opening data folder %q: %w", path, err)
	}
	if !existed {
		w.problems = nil
	}
	h, err := openHandle(real, windows.FILE_LIST_DIRECTORY|windows.READ_CONTROL,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT)
	if err != nil {
		return nil, fmt.Errorf("opening data folder %q: %w", real, err)
	}
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("opening data folder %q: %w", real, err)
	}
	if info.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY == 0 || info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		w.problems = append(w.problems, PathProblem{Path: real, Why: "not a folder"})
	} else if existed {
		w.problems = append(w.problems, aclOfHandle(real, h, w.self)...)
	}
	if err := permissionError(w.problems); err != nil {
		windows.CloseHandle(h)
		return nil, err
	}
	return &DataDir{f: os.NewFile(uintptr(h), real), name: real, path: real}, nil
}

// CheckDataDir judges the data folder at path as OpenDataDir does, without
// creating or holding anything; a folder not created yet is judged by the
// folder that would hold it.
func CheckDataDir(path string) error {
	return checkDir(newWinWalker(), path)
}

// CheckSocketDir has nothing to judge on Windows, where the API is a named
// pipe.
func CheckSocketDir(string) error { return nil }

func checkDir(w *winWalker, path string) error {
	real, err := w.walk(path, false)
	var missing *errMissing
	switch {
	case errors.As(err, &missing), errors.Is(err, errRefused):
	case err != nil:
		return fmt.Errorf("checking %q: %w", path, err)
	default:
		if fi, err := os.Stat(real); err == nil && !fi.IsDir() {
			w.problems = append(w.problems, PathProblem{Path: real, Why: "not a folder"})
		}
	}
	return permissionError(w.problems)
}

func aclOf(path, self string) []PathProblem {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return []PathProblem{{Path: path, Why: "cannot read its access list: " + err.Error()}}
	}
	return judgeSD(path, sd, self)
}

func aclOfHandle(path string, h windows.Handle, self string) []PathProblem {
	sd, err := windows.GetSecurityInfo(h, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return []PathProblem{{Path: path, Why: "cannot read its access list: " + err.Error()}}
	}
	return judgeSD(path, sd, self)
}

func judgeSD(path string, sd *windows.SECURITY_DESCRIPTOR, self string) []PathProblem {
	owner, _, err := sd.Owner()
	if err != nil {
		return []PathProblem{{Path: path, Why: "cannot read its owner: " + err.Error()}}
	}
	dacl, _, err := sd.DACL()
	if err != nil && !errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) {
		return []PathProblem{{Path: path, Why: "cannot read its access list: " + err.Error()}}
	}
	if dacl == nil {
		return JudgeACL(path, owner.String(), true, nil, self)
	}
	var aces []ACE
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var h *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &h); err != nil {
			return []PathProblem{{Path: path, Why: "cannot read its access list: " + err.Error()}}
		}
		// Plain allow and deny entries share this layout; for the others
		// the SID sits elsewhere, and NewACE does not read it.
		var sidStr, account string
		if t := h.Header.AceType; t == windows.ACCESS_ALLOWED_ACE_TYPE || t == windows.ACCESS_DENIED_ACE_TYPE {
			sid := (*windows.SID)(unsafe.Pointer(&h.SidStart))
			sidStr = sid.String()
			if acct, dom, _, err := sid.LookupAccount(""); err == nil {
				account = dom + `\` + acct
			}
		}
		aces = append(aces, NewACE(h.Header.AceType, h.Header.AceFlags, uint32(h.Mask), sidStr, account))
	}
	return JudgeACL(path, owner.String(), false, aces, self)
}

func selfSID() string {
	tok := windows.GetCurrentProcessToken()
	u, err := tok.GetTokenUser()
	if err != nil {
		return ""
	}
	return u.User.Sid.String()
}
