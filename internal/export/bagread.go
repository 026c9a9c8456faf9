package export

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
)

// Bag is a bag's structure as read from a folder: its declaration checked,
// bag-info.txt and the manifests parsed, and every file listed with its
// size. Nothing has been hashed yet. A Bag comes from outside (a court, a
// copy on a stick), so ReadBag trusts nothing in it: paths are checked to
// stay inside the bag, links and special files are refused, and sizes are
// bounded.
type Bag struct {
	Info         []field
	Manifests    map[string][]manifestLine // payload manifests by algorithm
	TagManifests map[string][]manifestLine // tag manifests by algorithm
	Files        map[string]int64          // every regular file, by slash path, with its size
}

// digestSize is the digest length of each algorithm carrel can check.
var digestSize = map[string]int{"sha256": 32, "sha512": 64}

// maxFiles bounds how many files a bag may hold before reading stops.
const maxFiles = 1 << 20

// ReadBag reads the structure of the bag at the root of fsys.
func ReadBag(fsys fs.FS) (*Bag, error) {
	decl, err := readSmall(fsys, "bagit.txt", maxInfoFile)
	if err != nil {
		return nil, err
	}
	if strings.ReplaceAll(string(decl), "\r\n", "\n") != bagitTxt {
		return nil, fmt.Errorf("bagit.txt is not a BagIt 1.0 declaration with UTF-8 tag files: %q", truncate(string(decl), 120))
	}
	b := &Bag{Manifests: map[string][]manifestLine{}, TagManifests: map[string][]manifestLine{}, Files: map[string]int64{}}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading the bag: %w", err)
		}
		if p == "." {
			return nil
		}
		if err := checkPath(p); err != nil {
			return fmt.Errorf("a file in the bag has a name carrel refuses: %w", err)
		}
		switch t := d.Type(); {
		case t.IsDir():
			return nil
		case !t.IsRegular():
			return fmt.Errorf("%s %w", displayName(p), notRegular(t))
		}
		if len(b.Files) >= maxFiles {
			return fmt.Errorf("the bag holds more than %d files", maxFiles)
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("reading the bag: %w", err)
		}
		b.Files[p] = fi.Size()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := b.Files["bag-info.txt"]; !ok {
		return nil, errors.New("bag-info.txt is missing")
	}
	info, err := readSmall(fsys, "bag-info.txt", maxInfoFile)
	if err != nil {
		return nil, err
	}
	if b.Info, err = parseBagInfo(info); err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(b.Files) {
		if strings.Contains(name, "/") {
			continue
		}
		var into map[string][]manifestLine
		alg, ok := strings.CutPrefix(name, "manifest-")
		if ok {
			into = b.Manifests
		} else if alg, ok = strings.CutPrefix(name, "tagmanifest-"); ok {
			into = b.TagManifests
		} else {
			continue
		}
		alg, ok = strings.CutSuffix(alg, ".txt")
		if !ok {
			continue
		}
		size, known := digestSize[alg]
		if !known {
			return nil, fmt.Errorf("%s: carrel checks only sha256 and sha512 manifests", displayName(name))
		}
		raw, err := readSmall(fsys, name, maxTagFile)
		if err != nil {
			return nil, err
		}
		if into[alg], err = parseManifest(raw, size); err != nil {
			return nil, fmt.Errorf("%s: %w", displayName(name), err)
		}
	}
	return b, nil
}

// readSmall reads a regular file of the bag, refusing one larger than
// limit. It opens nothing but a regular file (openRegular), and reads
// from the file it opened.
func readSmall(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := openRegular(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, missingError(name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", displayName(name), err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", displayName(name), err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", displayName(name), limit)
	}
	return b, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// missingError says a file the bag must hold is not there; it matches
// fs.ErrNotExist.
type missingError string

func (e missingError) Error() string { return displayName(string(e)) + " is missing" }
func (e missingError) Unwrap() error { return fs.ErrNotExist }
