package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/export"
)

func TestProgressLine(t *testing.T) {
	tests := []struct {
		p    export.Progress
		want string
	}{
		{export.Progress{FilesTotal: 3, BytesTotal: 1 << 30}, "exporting: 0/3 files, 0 B of 1.0 GiB traffic"},
		{export.Progress{Files: 2, FilesTotal: 9, Bytes: 256 << 20, BytesTotal: 1 << 30, Elapsed: 10 * time.Second},
			"exporting: 2/9 files, 256.0 MiB of 1.0 GiB traffic, about 30s left"},
		{export.Progress{Files: 9, FilesTotal: 9, Bytes: 1 << 30, BytesTotal: 1 << 30, Elapsed: 41 * time.Second, Done: true},
			"exporting: 9/9 files, 1.0 GiB of 1.0 GiB traffic, done in 41s"},
	}
	for _, tt := range tests {
		if got := progressLine(tt.p); got != tt.want {
			t.Errorf("progressLine(%+v) = %q; want %q", tt.p, got, tt.want)
		}
	}
}

// TestProgressPrinterQuietOffTerminal: a buffer (a pipe, a log) gets no
// progress callback at all.
func TestProgressPrinterQuietOffTerminal(t *testing.T) {
	if progressPrinter(&bytes.Buffer{}) != nil {
		t.Error("progressPrinter(buffer) != nil; want no progress off a terminal")
	}
}
