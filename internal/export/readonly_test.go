package export

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/booking"
)

// TestBookingsReadOnly: the export reads the register without the patron
// secret, and cannot change it.
func TestBookingsReadOnly(t *testing.T) {
	f := newFixture(t, "")
	f.book("pc-01", "B-1", "09:30", "10:15", "4711")
	path := filepath.Join(f.dataDir, bookingsFile)
	s, err := booking.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	bs, err := s.List(ctx, at("10:00"), at("11:00"))
	if err != nil || len(bs) != 1 || bs[0].Ref != "B-1" || !bs[0].HasPatron {
		t.Fatalf("List = %+v, %v; want B-1 with a patron", bs, err)
	}
	if _, err := s.Start(ctx, booking.StartRequest{PC: "pc-01", Ref: "B-2"}); err == nil {
		t.Error("Start through a read-only register succeeded")
	}
	if n, _ := f.bookings.Stats(ctx); n.Count != 1 {
		t.Errorf("register holds %d bookings after a refused Start; want 1", n.Count)
	}
	if _, err := booking.OpenReadOnly(filepath.Join(f.root, "none.db")); !errors.Is(err, booking.ErrNotExist) {
		t.Errorf("OpenReadOnly(missing) = %v; want ErrNotExist", err)
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := booking.OpenReadOnly(path); err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Errorf("OpenReadOnly(newer schema) = %v; want it refused naming the version", err)
	}
}
