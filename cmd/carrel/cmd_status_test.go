package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
)

func TestPrintStatusDiskFull(t *testing.T) {
	st := api.Status{PC: "pc-01", Mode: "bookings-only"}
	var out bytes.Buffer
	printStatus(&out, st)
	if strings.Contains(out.String(), "disk full") {
		t.Errorf("status without a full disk says disk full:\n%s", out.String())
	}
	st.DiskFull = &api.DiskFull{Since: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC), Refused: 3}
	out.Reset()
	printStatus(&out, st)
	if !strings.Contains(out.String(), "disk full:       3 booking changes refused since") {
		t.Errorf("status with a full disk:\n%s\nwant a disk full line with the count", out.String())
	}
}
