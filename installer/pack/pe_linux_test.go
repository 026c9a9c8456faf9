package pack

import (
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
)

// The version resource of a PE file, read by the layout Microsoft
// documents (resource directory tree; VS_VERSIONINFO, VS_FIXEDFILEINFO,
// StringFileInfo), independently of windres that wrote it.

// peVersion is what a version resource says.
type peVersion struct {
	File, Product [4]uint16
	Strings       map[string]string // from the first string table
}

const rtVersion = 16

func readPEVersion(path string) (peVersion, error) {
	f, err := pe.Open(path)
	if err != nil {
		return peVersion{}, err
	}
	defer f.Close()
	sec := f.Section(".rsrc")
	if sec == nil {
		return peVersion{}, errors.New("no .rsrc section")
	}
	rsrc, err := sec.Data()
	if err != nil {
		return peVersion{}, err
	}
	// Type → name → language → data entry.
	off := uint32(0)
	for level, want := range []int{rtVersion, -1, -1} {
		next, err := resourceEntry(rsrc, off, want)
		if err != nil {
			return peVersion{}, fmt.Errorf("resource directory level %d: %w", level, err)
		}
		off = next
	}
	if int(off)+8 > len(rsrc) {
		return peVersion{}, errors.New("resource data entry out of range")
	}
	rva, size := binary.LittleEndian.Uint32(rsrc[off:]), binary.LittleEndian.Uint32(rsrc[off+4:])
	start := int64(rva) - int64(sec.VirtualAddress)
	if start < 0 || start+int64(size) > int64(len(rsrc)) {
		return peVersion{}, errors.New("version resource out of range")
	}
	root, _, err := parseVerNode(rsrc[start : start+int64(size)])
	if err != nil {
		return peVersion{}, err
	}
	if root.key != "VS_VERSION_INFO" || len(root.value) < 52 || binary.LittleEndian.Uint32(root.value) != 0xFEEF04BD {
		return peVersion{}, fmt.Errorf("not a VS_VERSIONINFO (key %q)", root.key)
	}
	quad := func(ms, ls uint32) [4]uint16 {
		return [4]uint16{uint16(ms >> 16), uint16(ms), uint16(ls >> 16), uint16(ls)}
	}
	v := root.value
	out := peVersion{
		File:    quad(binary.LittleEndian.Uint32(v[8:]), binary.LittleEndian.Uint32(v[12:])),
		Product: quad(binary.LittleEndian.Uint32(v[16:]), binary.LittleEndian.Uint32(v[20:])),
		Strings: map[string]string{},
	}
	for _, c := range root.children {
		if c.key != "StringFileInfo" || len(c.children) == 0 {
			continue
		}
		for _, s := range c.children[0].children {
			out.Strings[s.key] = utf16String(s.value)
		}
	}
	return out, nil
}

// resourceEntry finds the entry with id want (-1: the first) in the
// resource directory at off, and returns the offset it points to.
func resourceEntry(rsrc []byte, off uint32, want int) (uint32, error) {
	if int(off)+16 > len(rsrc) {
		return 0, errors.New("directory out of range")
	}
	n := int(binary.LittleEndian.Uint16(rsrc[off+12:])) + int(binary.LittleEndian.Uint16(rsrc[off+14:]))
	for i := range n {
		e := int(off) + 16 + 8*i
		if e+8 > len(rsrc) {
			return 0, errors.New("entry out of range")
		}
		id, to := binary.LittleEndian.Uint32(rsrc[e:]), binary.LittleEndian.Uint32(rsrc[e+4:])
		if want >= 0 && (id&0x80000000 != 0 || int(id) != want) {
			continue
		}
		return to &^ 0x80000000, nil
	}
	return 0, fmt.Errorf("no entry %d", want)
}

type verNode struct {
	key      string
	value    []byte
	children []verNode
}

// parseVerNode reads one node (wLength, wValueLength, wType, szKey,
// padding, Value, padding, Children) and returns it and its length.
func parseVerNode(b []byte) (verNode, int, error) {
	if len(b) < 6 {
		return verNode{}, 0, errors.New("short version node")
	}
	length := int(binary.LittleEndian.Uint16(b))
	valueLen := int(binary.LittleEndian.Uint16(b[2:]))
	if binary.LittleEndian.Uint16(b[4:]) == 1 {
		valueLen *= 2 // text: counted in UTF-16 units
	}
	if length > len(b) || length < 6 {
		return verNode{}, 0, errors.New("version node length out of range")
	}
	b = b[:length]
	off := 6
	var key []uint16
	for ; off+2 <= len(b); off += 2 {
		c := binary.LittleEndian.Uint16(b[off:])
		if c == 0 {
			break
		}
		key = append(key, c)
	}
	off = align4(off + 2)
	if off+valueLen > len(b) {
		return verNode{}, 0, errors.New("version value out of range")
	}
	n := verNode{key: string(utf16.Decode(key)), value: b[off : off+valueLen]}
	for off = align4(off + valueLen); off+6 <= len(b); {
		c, l, err := parseVerNode(b[off:])
		if err != nil {
			return verNode{}, 0, err
		}
		n.children = append(n.children, c)
		off = align4(off + l)
	}
	return n, length, nil
}

func align4(n int) int { return (n + 3) &^ 3 }

func utf16String(b []byte) string {
	var u []uint16
	for i := 0; i+2 <= len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
