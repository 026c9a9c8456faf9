package audit

import (
	"database/sql"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// flip is one bit of one stored value that tamper evidence covers.
type flip struct {
	table, col string
	keyCols    []string // identify the row
	keyVals    []any
	orig       any // []byte for TEXT and BLOB columns, int64 for INTEGER ones
	text       bool
	bit        int
}

func (f flip) String() string {
	return fmt.Sprintf("%s.%s bit %d where %v=%v", f.table, f.col, f.bit, f.keyCols, f.keyVals)
}

func (f flip) flipped() any {
	if n, ok := f.orig.(int64); ok {
		return n ^ 1<<f.bit
	}
	b := append([]byte(nil), f.orig.([]byte)...)
	b[f.bit/8] ^= 1 << (f.bit % 8)
	return b
}

// set changes the value from `from` to `to`; when the column is part of the
// row's key, the row is found by `from`.
func (f flip) set(db *sql.DB, from, to any) error {
	var conds []string
	var args []any
	arg := func(v any) any {
		if b, ok := v.([]byte); ok && f.text {
			return string(b)
		}
		return v
	}
	args = append(args, arg(to))
	for i, c := range f.keyCols {
		conds = append(conds, c+" = ?")
		v := f.keyVals[i]
		if c == f.col {
			v = from
		}
		args = append(args, arg(v))
	}
	res, err := db.Exec(fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s", f.table, f.col, strings.Join(conds, " AND ")), args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%d rows changed", n)
	}
	return nil
}

// flipTargets lists every bit of every covered column. Not covered, by
// design: entries.once (idempotency key, not hashed), checkpoints.made and
// keys.added (bookkeeping times), checkpoints.id (only orders them).
func flipTargets(t *testing.T, db *sql.DB) []flip {
	t.Helper()
	type table struct {
		name   string
		keys   []string
		ints   map[string]int // integer column → bits to flip
		texts  []string
		isBlob bool
	}
	tables := []table{
		{name: "entries", keys: []string{"seq"}, ints: map[string]int{"seq": 16, "v": 8}, texts: []string{"time", "kind", "actor"}},
		{name: "fields", keys: []string{"seq", "key"}, ints: map[string]int{"seq": 16}, texts: []string{"key", "type", "value"}},
		{name: "hashes", keys: []string{"id"}, ints: map[string]int{"id": 16}, texts: []string{"hash"}, isBlob: true},
		{name: "checkpoints", keys: []string{"id"}, ints: map[string]int{"size": 16}, texts: []string{"note"}},
		{name: "keys", keys: []string{"id"}, texts: []string{"verifier"}},
		{name: "meta", keys: []string{"key"}, texts: []string{"value"}},
	}
	var out []flip
	for _, tb := range tables {
		cols := append([]string{}, tb.keys...)
		for c := range tb.ints {
			cols = append(cols, c)
		}
		cols = append(cols, tb.texts...)
		rows, err := db.Query(fmt.Sprintf("SELECT %s FROM %s", strings.Join(cols, ", "), tb.name))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			keyVals := vals[:len(tb.keys)]
			for i, c := range cols[len(tb.keys):] {
				v := vals[len(tb.keys)+i]
				base := flip{table: tb.name, col: c, keyCols: tb.keys, keyVals: keyVals}
				if bits, ok := tb.ints[c]; ok {
					for b := 0; b < bits; b++ {
						f := base
						f.orig, f.bit = v.(int64), b
						out = append(out, f)
					}
					continue
				}
				var raw []byte
				switch x := v.(type) {
				case string:
					raw = []byte(x)
				case []byte:
					raw = x
				default:
					t.Fatalf("%s.%s is %T", tb.name, c, v)
				}
				for b := 0; b < len(raw)*8; b++ {
					f := base
					f.orig, f.text, f.bit = raw, !tb.isBlob, b
					out = append(out, f)
				}
			}
		}
		rows.Close()
	}
	return out
}

// TestBitFlipSweep flips single bits across entries, fields, tree hashes,
// checkpoints, keys and the origin, one at a time, and requires Verify to
// fail for every one. `make test` sweeps 600 random positions (the seed is
// logged); `make test-long` sweeps all of them.
func TestBitFlipSweep(t *testing.T) {
	dir := tamperLog(t)
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "audit.db")+"?_synchronous=OFF&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	l := reopen(t, dir, true)
	mustVerify(t, l, VerifyOptions{})

	targets := flipTargets(t, db)
	const sample = 600
	if !testenv.Long() && len(targets) > sample {
		seed := time.Now().UnixNano()
		t.Logf("sweeping %d of %d positions, seed %d", sample, len(targets), seed)
		r := rand.New(rand.NewSource(seed))
		r.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
		targets = targets[:sample]
	} else {
		t.Logf("sweeping all %d positions", len(targets))
	}
	tried, refused := 0, 0
	for _, f := range targets {
		to := f.flipped()
		if err := f.set(db, f.orig, to); err != nil {
			// SQLite itself refused (a key collision): nothing was changed.
			refused++
			continue
		}
		tried++
		_, err := l.Verify(t.Context(), VerifyOptions{})
		if !errors.Is(err, ErrTampered) {
			t.Errorf("Verify after flipping %s = %v; want it detected", f, err)
		}
		if err := f.set(db, to, f.orig); err != nil {
			t.Fatalf("restoring %s: %v", f, err)
		}
	}
	t.Logf("%d flips detected, %d refused by SQLite", tried, refused)
	if refused > len(targets)/20 {
		t.Errorf("%d of %d flips were refused by SQLite; the sweep tests too little", refused, len(targets))
	}
	if tried < 500 && !testenv.Long() {
		t.Errorf("only %d flips tried; want at least 500", tried)
	}
	mustVerify(t, l, VerifyOptions{}) // everything was restored
}
