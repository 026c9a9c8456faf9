package daemon

import (
	"testing"
	"time"
)

func TestSameBoot(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		a, b string
		want bool
	}{
		{"6f1c0f2a-1111-4b7e-9c1d-aaaaaaaaaaaa", "6f1c0f2a-1111-4b7e-9c1d-aaaaaaaaaaaa", true},
		{"6f1c0f2a-1111-4b7e-9c1d-aaaaaaaaaaaa", "0e3b19d4-2222-4f0a-8d2e-bbbbbbbbbbbb", false},
		{bootTimeID(t0), bootTimeID(t0.Add(3 * time.Second)), true}, // the clock was corrected
		{bootTimeID(t0), bootTimeID(t0.Add(-bootTimeSlack)), true},
		{bootTimeID(t0), bootTimeID(t0.Add(bootTimeSlack + time.Second)), false},
		{bootTimeID(t0), bootTimeID(t0.Add(2 * time.Hour)), false}, // a later boot
		{bootTimeID(t0), "boot-time:x", false},
		{"boot-time:x", "boot-time:x", true},
	}
	for _, tt := range tests {
		if got := sameBoot(tt.a, tt.b); got != tt.want {
			t.Errorf("sameBoot(%q, %q) = %v; want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestBootID(t *testing.T) {
	a, err := bootID()
	if err != nil || a == "" {
		t.Fatalf("bootID() = %q, %v", a, err)
	}
	b, _ := bootID()
	if !sameBoot(a, b) {
		t.Errorf("bootID() twice = %q, %q; want the same boot", a, b)
	}
}
