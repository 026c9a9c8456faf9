//go:build windows

package capture

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// npcapLib is a loaded wpcap.dll with every function carrel calls
// resolved (npcap.go says why carrel binds it itself).
type npcapLib struct {
	path  string
	procs [npcapFuncCount]uintptr
}

var (
	npcapMu     sync.Mutex
	npcapLoaded *npcapLib // kept once loaded; a failed load is tried again at the next capture
)

// loadNpcap returns the loaded wpcap.dll, loading it the first time. It is
// looked for only where Npcap installs it: System32\Npcap, and System32
// (Npcap's "WinPcap API-compatible mode", and old WinPcap) — never in the
// working folder or PATH, where other accounts may put a DLL of that name.
// Its own dependency (Packet.dll) is looked for beside it and in System32.
func loadNpcap() (*npcapLib, error) {
	npcapMu.Lock()
	defer npcapMu.Unlock()
	if npcapLoaded != nil {
		return npcapLoaded, nil
	}
	sys, err := windows.GetSystemDirectory()
	if err != nil {
		return nil, fmt.Errorf("finding the System32 folder: %w", err)
	}
	folders := []string{filepath.Join(sys, "Npcap"), sys}
	for _, dir := range folders {
		path := filepath.Join(dir, "wpcap.dll")
		// Looked at first: LoadLibraryEx says "module not found" both for
		// a missing file and for a missing dependency (Packet.dll), and
		// only the first means there is no wpcap.dll here.
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		h, err := windows.LoadLibraryEx(path, 0, windows.LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR|windows.LOAD_LIBRARY_SEARCH_SYSTEM32)
		if err != nil {
			return nil, npcapUnloadable(path, err)
		}
		procs, missing := resolveNpcap(func(name string) (uintptr, error) { return windows.GetProcAddress(h, name) })
		if len(missing) > 0 {
			version := ""
			if v, err := windows.GetProcAddress(h, "pcap_lib_version"); err == nil {
				r, _, _ := syscall.SyscallN(v)
				version = cString(r)
			}
			windows.FreeLibrary(h)
			return nil, npcapIncompatible(path, version, missing)
		}
		npcapLoaded = &npcapLib{path: path, procs: procs}
		return npcapLoaded, nil
	}
	return nil, npcapNotFound(folders)
}

// call calls a function of wpcap.dll with integer and handle arguments;
// every one carrel calls returns an int or a pointer. Calls that pass Go
// memory call syscall.SyscallN directly, with each pointer converted in
// its argument list, which keeps the memory alive and in place until the
// call returns (unsafe.Pointer rule 4); through call it would not be.
func (l *npcapLib) call(f npcapFunc, args ...uintptr) uintptr {
	r, _, _ := syscall.SyscallN(l.procs[f], args...)
	return r
}

// status is the C int a function returned.
func status(r uintptr) int32 { return int32(uint32(r)) }

// cString copies the NUL-terminated string at r, a char* that wpcap.dll
// returned and still owns.
func cString(r uintptr) string {
	if r == 0 {
		return ""
	}
	// Read through a **byte so that no uintptr becomes a pointer (go vet's
	// unsafeptr); the memory is the DLL's, never Go's.
	return windows.BytePtrToString(*(**byte)(unsafe.Pointer(&r)))
}

// pcapErrbufSize is PCAP_ERRBUF_SIZE.
const pcapErrbufSize = 256

// Layouts of libpcap's structures on 64-bit Windows (pcap/pcap.h).
type (
	pcapPkthdr struct {
		Sec, Usec int32 // struct timeval: Windows' long is 32 bits
		Caplen    uint32
		Len       uint32
	}
	// pcapStat is struct pcap_stat with the three fields Windows builds
	// add after ps_ifdrop; pcap_stats fills the first three.
	pcapStat struct {
		Recv, Drop, Ifdrop  uint32
		Capt, Sent, Netdrop uint32
	}
	pcapIf struct {
		Next        *pcapIf
		Name        *byte
		Description *byte
		Addresses   *pcapAddr
		Flags       uint32
	}
	pcapAddr struct {
		Next                              *pcapAddr
		Addr, Netmask, Broadaddr, Dstaddr *windows.RawSockaddr
	}
)

// npcapDev is an adapter as pcap_findalldevs lists it.
type npcapDev struct {
	Name, Description string
	Addrs             [][]byte // IPv4 (4 bytes) and IPv6 (16 bytes) addresses
}

// findAllDevs lists the adapters Npcap can capture on.
func (l *npcapLib) findAllDevs() ([]npcapDev, error) {
	var first *pcapIf
	errbuf := make([]byte, pcapErrbufSize)
	r, _, _ := syscall.SyscallN(l.procs[fnFindalldevs], uintptr(unsafe.Pointer(&first)), uintptr(unsafe.Pointer(&errbuf[0])))
	if status(r) != 0 {
		return nil, errors.New(windows.ByteSliceToString(errbuf))
	}
	defer syscall.SyscallN(l.procs[fnFreealldevs], uintptr(unsafe.Pointer(first)))
	var devs []npcapDev
	for d := first; d != nil; d = d.Next {
		dev := npcapDev{Name: windows.BytePtrToString(d.Name), Description: windows.BytePtrToString(d.Description)}
		for a := d.Addresses; a != nil; a = a.Next {
			if ip := sockaddrIP(a.Addr); ip != nil {
				dev.Addrs = append(dev.Addrs, ip)
			}
		}
		devs = append(devs, dev)
	}
	return devs, nil
}

// sockaddrIP is the address of an AF_INET or AF_INET6 sockaddr; nil for
// any other.
func sockaddrIP(sa *windows.RawSockaddr) []byte {
	if sa == nil {
		return nil
	}
	switch sa.Family {
	case windows.AF_INET:
		in := (*windows.RawSockaddrInet4)(unsafe.Pointer(sa))
		return append([]byte(nil), in.Addr[:]...)
	case windows.AF_INET6:
		in := (*windows.RawSockaddrInet6)(unsafe.Pointer(sa))
		return append([]byte(nil), in.Addr[:]...)
	}
	return nil
}

// npcapHandle is an activated capture handle (a pcap_t).
type npcapHandle struct {
	lib  *npcapLib
	p    uintptr
	hdr  *pcapPkthdr // written by pcap_next_ex: the DLL's memory
	data *byte
}

// errNpcapTimeout is what read returns when no packet came within the
// handle's timeout.
var errNpcapTimeout = errors.New("npcap: no packet within the timeout")

// open creates and activates a handle on the adapter dev.
func (l *npcapLib) open(dev string, snaplen, bufferSize, timeoutMS int) (*npcapHandle, error) {
	name, err := windows.BytePtrFromString(dev)
	if err != nil {
		return nil, fmt.Errorf("adapter name %q: %w", dev, err)
	}
	errbuf := make([]byte, pcapErrbufSize)
	p, _, _ := syscall.SyscallN(l.procs[fnCreate], uintptr(unsafe.Pointer(name)), uintptr(unsafe.Pointer(&errbuf[0])))
	if p == 0 {
		return nil, errors.New(windows.ByteSliceToString(errbuf))
	}
	h := &npcapHandle{lib: l, p: p}
	for _, set := range []struct {
		what string
		f    npcapFunc
		v    int
	}{
		{"snap length", fnSetSnaplen, snaplen},
		{"buffer size", fnSetBufferSize, bufferSize},
		{"timeout", fnSetTimeout, timeoutMS},
		{"promiscuous mode", fnSetPromisc, 0},
	} {
		if st := status(l.call(set.f, p, uintptr(set.v))); st != 0 {
			err := fmt.Errorf("setting the %s: %s", set.what, h.statusText(st))
			h.close()
			return nil, err
		}
	}
	// A positive status is a warning (e.g. promiscuous mode unsupported,
	// which carrel does not ask for); a negative one an error.
	if st := status(l.call(fnActivate, p)); st < 0 {
		err := errors.New(h.statusText(st))
		h.close()
		return nil, err
	}
	return h, nil
}

// statusText explains a status code, with the handle's own message when
// it has one (PCAP_ERROR, PCAP_ERROR_NO_SUCH_DEVICE, _PERM_DENIED …).
func (h *npcapHandle) statusText(st int32) string {
	msg := cString(h.lib.call(fnStatustostr, uintptr(st)))
	if detail := cString(h.lib.call(fnGeterr, h.p)); detail != "" && detail != msg {
		msg += ": " + detail
	}
	return msg
}

func (h *npcapHandle) linkType() int { return int(status(h.lib.call(fnDatalink, h.p))) }

// read returns the next packet, valid until the next read, or
// errNpcapTimeout.
func (h *npcapHandle) read() ([]byte, pcapPkthdr, error) {
	r, _, _ := syscall.SyscallN(h.lib.procs[fnNextEx], h.p, uintptr(unsafe.Pointer(&h.hdr)), uintptr(unsafe.Pointer(&h.data)))
	switch st := status(r); st {
	case 1:
		if h.hdr == nil || h.data == nil {
			return nil, pcapPkthdr{}, errors.New("pcap_next_ex returned a packet without a header or data")
		}
		hdr := *h.hdr
		return unsafe.Slice(h.data, hdr.Caplen), hdr, nil
	case 0:
		return nil, pcapPkthdr{}, errNpcapTimeout
	default:
		return nil, pcapPkthdr{}, errors.New(h.statusText(st))
	}
}

// drops is the number of packets the driver and the adapter dropped.
func (h *npcapHandle) drops() uint64 {
	var st pcapStat
	if r, _, _ := syscall.SyscallN(h.lib.procs[fnStats], h.p, uintptr(unsafe.Pointer(&st))); status(r) != 0 {
		return 0
	}
	return uint64(st.Drop) + uint64(st.Ifdrop)
}

func (h *npcapHandle) close() {
	if h.p != 0 {
		h.lib.call(fnClose, h.p)
		h.p = 0
	}
}
