package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/quic-go/quic-go"

	"github.com/carrel-lib/carrel/internal/seal"
)

// TestQUICUnderCase: HTTP/3 browsing from the PC while a case is active
// reaches the sealed traffic as server names marked "quic":true, from the
// real `carrel run` under the case, QUIC v1 and v2 (issue 15: the metadata
// a court receives no longer omits HTTP/3).
func TestQUICUnderCase(t *testing.T) {
	l := newPCLab(t)
	names := map[string]quic.Version{"h3.example.test": quic.Version1, "h3-v2.example.test": quic.Version2}
	l.lab.StartHTTP3("h3.example.test", "h3-v2.example.test")
	now := time.Now()
	l.writeConfig(t, tcase{id: "2026-quic", start: now.Add(-time.Minute), end: now.Add(time.Hour)}.toml())
	waitUntil(t, "capture on", func() bool { return l.status(t).Mode == "capturing" && l.packetSockets(t) > 0 })

	before := l.status(t).Capture.Packets
	for name, v := range names {
		if body, err := l.lab.HTTP3Get(name, l.lab.Server4, v); err != nil || !strings.Contains(body, name) {
			t.Fatalf("HTTP/3 GET https://%s/ (%v) = %q, %v", name, v, body, err)
		}
	}
	// The engine reads its ring in order: once status counts a burst sent
	// after the requests (far more packets than the requests made), it has
	// read every packet of the requests.
	const burst = 1000
	l.udpBurst(t, burst, 100)
	waitUntil(t, "the burst after the requests counted", func() bool { return l.status(t).Capture.Packets >= before+burst })

	l.writeConfig(t, "") // the case ends: the segment is sealed
	waitUntil(t, "capture off", func() bool { return l.status(t).Mode == "bookings-only" && l.packetSockets(t) == 0 })

	ids, err := seal.LoadIdentities(l.identity)
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	for _, f := range l.trafficFiles(t) {
		if !strings.HasSuffix(f, ".age") {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := age.Decrypt(fh, ids[0])
		if err != nil {
			t.Fatalf("decrypting %s: %v", f, err)
		}
		io.Copy(&plain, r)
		fh.Close()
	}
	for name := range names {
		if want := `"dport":443,"sni":"` + name + `","quic":true}`; !strings.Contains(plain.String(), want) {
			t.Errorf("sealed records lack %s:\n%s", want, plain.String())
		}
	}
}
