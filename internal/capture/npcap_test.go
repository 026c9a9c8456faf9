package capture

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestResolveNpcap: every function carrel calls is looked up, and a DLL
// lacking any of them is reported with all the missing names, so that
// nothing is ever called through a null address.
func TestResolveNpcap(t *testing.T) {
	// Npcap: everything is there.
	all := func(name string) (uintptr, error) { return uintptr(len(name)), nil }
	procs, missing := resolveNpcap(all)
	if len(missing) != 0 {
		t.Fatalf("resolveNpcap(all) missing %v", missing)
	}
	for i, p := range procs {
		if p == 0 {
			t.Errorf("resolveNpcap(all): %s has no address", npcapFuncs[i])
		}
	}
	if len(npcapFuncs) != int(npcapFuncCount) {
		t.Fatalf("%d names for %d functions", len(npcapFuncs), npcapFuncCount)
	}

	// Wine's wpcap.dll and WinPcap 4.1 lack functions gopacket/pcap binds
	// (pcap_setdirection, pcap_hopen_offline), none of which carrel calls.
	wine := func(name string) (uintptr, error) {
		if name == "pcap_setdirection" || name == "pcap_hopen_offline" {
			return 0, errors.New("The specified procedure could not be found.")
		}
		return 1, nil
	}
	if _, missing := resolveNpcap(wine); len(missing) != 0 {
		t.Errorf("resolveNpcap(Wine's wpcap.dll) missing %v", missing)
	}

	// An old WinPcap: no pcap_create family.
	old := func(name string) (uintptr, error) {
		switch name {
		case "pcap_findalldevs", "pcap_freealldevs", "pcap_datalink", "pcap_next_ex", "pcap_stats", "pcap_geterr", "pcap_close":
			return 1, nil
		}
		return 0, errors.New("The specified procedure could not be found.")
	}
	_, missing = resolveNpcap(old)
	want := []string{"pcap_create", "pcap_set_snaplen", "pcap_set_buffer_size", "pcap_set_timeout", "pcap_set_promisc", "pcap_activate", "pcap_statustostr"}
	if fmt.Sprint(missing) != fmt.Sprint(want) {
		t.Errorf("resolveNpcap(old WinPcap) missing %v; want %v", missing, want)
	}

	// A lookup that "succeeds" with a null address counts as missing.
	null := func(name string) (uintptr, error) { return 0, nil }
	if _, missing := resolveNpcap(null); len(missing) != len(npcapFuncs) {
		t.Errorf("resolveNpcap(null addresses) missing %d of %d", len(missing), len(npcapFuncs))
	}
}

// TestNpcapErrors: each way Npcap can be unusable wraps ErrNpcapMissing
// and says what was found, where, and what to do; names from the disk and
// the DLL are quoted.
func TestNpcapErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"not found", npcapNotFound([]string{`C:\Windows\system32\Npcap`, `C:\Windows\system32`}),
			[]string{`no usable Npcap is installed: no wpcap.dll in "C:\\Windows\\system32\\Npcap" or "C:\\Windows\\system32"; install Npcap from https://npcap.com`}},
		{"unloadable", npcapUnloadable(`C:\Windows\system32\wpcap.dll`, errors.New("%1 is not a valid Win32 application.")),
			[]string{`no usable Npcap is installed: "C:\\Windows\\system32\\wpcap.dll" cannot be loaded (%1 is not a valid Win32 application.); repair or reinstall Npcap`}},
		{"old WinPcap", npcapIncompatible(`C:\Windows\system32\wpcap.dll`, "WinPcap version 3.1", []string{"pcap_create", "pcap_activate"}),
			[]string{`no usable Npcap is installed: "C:\\Windows\\system32\\wpcap.dll" ("WinPcap version 3.1") is not Npcap: it lacks pcap_create, pcap_activate (an old WinPcap`, "install Npcap from https://npcap.com"}},
		{"no version", npcapIncompatible(`C:\w.dll`, "", []string{"pcap_create"}),
			[]string{`"C:\\w.dll" is not Npcap: it lacks pcap_create`}},
		{"escapes", npcapIncompatible("C:\\\x1b[2Jw.dll", "v\x1b]0;pwned\a", []string{"pcap_create"}),
			[]string{`"C:\\\x1b[2Jw.dll" ("v\x1b]0;pwned\a")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, ErrNpcapMissing) {
				t.Errorf("%v does not wrap ErrNpcapMissing", tt.err)
			}
			for _, w := range tt.want {
				if !strings.Contains(tt.err.Error(), w) {
					t.Errorf("error:\n%s\nwant it to contain\n%s", tt.err, w)
				}
			}
			if strings.ContainsAny(tt.err.Error(), "\x1b\a") {
				t.Errorf("error %q holds raw control characters", tt.err)
			}
		})
	}
}

// TestPcapCaptureInfo: Npcap's 32-bit seconds and microseconds become the
// right time, past 2038 too.
func TestPcapCaptureInfo(t *testing.T) {
	tests := []struct {
		sec, usec int32
		want      time.Time
	}{
		{1_796_138_682, 643_507, time.Unix(1_796_138_682, 643_507_000)},
		{0, 0, time.Unix(0, 0)},
		{-2_147_483_648, 1, time.Date(2038, 1, 19, 3, 14, 8, 1000, time.UTC)}, // 2^31 s: a long's wrap
		{-1, 999_999, time.Unix(1<<32-1, 999_999_000)},                        // 2106
	}
	for _, tt := range tests {
		ci := pcapCaptureInfo(tt.sec, tt.usec, 60, 1514)
		if !ci.Timestamp.Equal(tt.want) || ci.CaptureLength != 60 || ci.Length != 1514 {
			t.Errorf("pcapCaptureInfo(%d, %d, 60, 1514) = %v %d %d; want %v 60 1514", tt.sec, tt.usec,
				ci.Timestamp.UTC(), ci.CaptureLength, ci.Length, tt.want.UTC())
		}
	}
}
