package capture

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
)

// What carrel needs of Npcap's wpcap.dll, and what it says when the DLL is
// missing or is not Npcap. Built here rather than in source_windows.go so
// that it is tested on every platform.
//
// carrel loads wpcap.dll itself, when capture starts (npcap_windows.go),
// not through gopacket/pcap: that package loads the DLL in its init, when
// the program starts, and panics when the DLL lacks any function it binds
// (pcap_setdirection, pcap_hopen_offline …), as Wine's wpcap.dll and old
// WinPcap versions do. carrel, which needs the DLL only under a misuse
// case, would then not start at all, and record no bookings.

// ErrNpcapMissing is wrapped when capture on Windows cannot start because
// no usable Npcap is installed: no wpcap.dll, one that cannot be loaded,
// or one that lacks functions carrel calls (an old WinPcap). Only capture
// fails; the misuse controller retries it with backoff, so installing
// Npcap is enough.
var ErrNpcapMissing = errors.New("no usable Npcap is installed")

// npcapHint tells an administrator what to do.
const npcapHint = "install Npcap from https://npcap.com; carrel retries capture by itself"

// npcapFuncs are the functions of wpcap.dll that carrel calls, all of
// which every Npcap (and libpcap 1.0 or later) has.
var npcapFuncs = [...]string{
	"pcap_findalldevs", "pcap_freealldevs",
	"pcap_create", "pcap_set_snaplen", "pcap_set_buffer_size", "pcap_set_timeout", "pcap_set_promisc", "pcap_activate",
	"pcap_datalink", "pcap_next_ex", "pcap_stats", "pcap_geterr", "pcap_statustostr", "pcap_close",
}

// npcapFunc indexes npcapFuncs.
type npcapFunc int

const (
	fnFindalldevs npcapFunc = iota
	fnFreealldevs
	fnCreate
	fnSetSnaplen
	fnSetBufferSize
	fnSetTimeout
	fnSetPromisc
	fnActivate
	fnDatalink
	fnNextEx
	fnStats
	fnGeterr
	fnStatustostr
	fnClose
	npcapFuncCount
)

// resolveNpcap looks up every function carrel calls with lookup (the
// DLL's GetProcAddress). It returns their addresses, or the names of the
// missing ones; nothing is called unless all are there.
func resolveNpcap(lookup func(name string) (uintptr, error)) (procs [npcapFuncCount]uintptr, missing []string) {
	for i, name := range npcapFuncs {
		p, err := lookup(name)
		if err != nil || p == 0 {
			missing = append(missing, name)
			continue
		}
		procs[i] = p
	}
	return procs, missing
}

// npcapNotFound says that no wpcap.dll was found in any of the folders.
func npcapNotFound(folders []string) error {
	q := make([]string, len(folders))
	for i, f := range folders {
		q[i] = fmt.Sprintf("%q", f)
	}
	return fmt.Errorf("%w: no wpcap.dll in %s; %s", ErrNpcapMissing, strings.Join(q, " or "), npcapHint)
}

// npcapUnloadable says that the wpcap.dll at path exists but Windows would
// not load it (damaged, or built for another architecture).
func npcapUnloadable(path string, err error) error {
	return fmt.Errorf("%w: %q cannot be loaded (%v); repair or reinstall Npcap from https://npcap.com", ErrNpcapMissing, path, err)
}

// npcapIncompatible says that the wpcap.dll at path lacks functions carrel
// calls: it is not Npcap. version is what its pcap_lib_version says, ""
// when it has none.
func npcapIncompatible(path, version string, missing []string) error {
	v := ""
	if version != "" {
		v = fmt.Sprintf(" (%q)", version)
	}
	return fmt.Errorf("%w: %q%s is not Npcap: it lacks %s (an old WinPcap, or another program's wpcap.dll); %s",
		ErrNpcapMissing, path, v, strings.Join(missing, ", "), npcapHint)
}

// pcapCaptureInfo is the CaptureInfo of a packet header as Npcap's
// pcap_next_ex gives it: a struct timeval of two 32-bit longs (Windows'
// long), microseconds, the captured and the original length. The seconds
// are read as unsigned: no capture is older than 1970, and so they stay
// right until 2106 rather than 2038.
func pcapCaptureInfo(sec, usec int32, caplen, length uint32) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{
		Timestamp:     time.Unix(int64(uint32(sec)), int64(usec)*1000),
		CaptureLength: int(caplen),
		Length:        int(length),
	}
}
