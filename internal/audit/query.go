package audit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Query selects entries. Zero values select everything.
type Query struct {
	Since time.Time // entries at or after Since
	Until time.Time // entries before Until
	Kinds []Kind    // entries of one of these kinds
	// Fields selects entries that have every one of these key=value pairs,
	// for example {"case": "2026-03"}; values are compared as stored.
	Fields map[string]string
	From   int64 // entries with seq >= From
	Limit  int   // at most this many, oldest first; 0 is no limit
}

// Entry returns the entry with sequence number seq.
func (l *Log) Entry(ctx context.Context, seq int64) (Entry, error) {
	var out *Entry
	err := l.Each(ctx, Query{From: seq, Limit: 1}, func(e Entry) error {
		if e.Seq == seq {
			out = &e
		}
		return nil
	})
	if err != nil {
		return Entry{}, err
	}
	if out == nil {
		return Entry{}, fmt.Errorf("audit log has no entry %d", seq)
	}
	return *out, nil
}

// Entries returns the entries q selects, oldest first.
func (l *Log) Entries(ctx context.Context, q Query) ([]Entry, error) {
	var out []Entry
	err := l.Each(ctx, q, func(e Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// Each calls fn for every entry q selects, oldest first, and stops at the
// first error fn returns.
func (l *Log) Each(ctx context.Context, q Query, fn func(Entry) error) error {
	return scanStored(ctx, l.r, q, func(s storedEntry) error {
		e, err := s.entry()
		if err != nil {
			return fmt.Errorf("audit entry %d: %w", s.seq, err)
		}
		return fn(e)
	})
}

// storedEntry is an entry as its columns hold it, before any checking, so
// that Verify can say exactly what is wrong with a row.
type storedEntry struct {
	seq          int64
	v            int64
	checkpoint   sql.NullInt64 // version 2 only
	time         string
	kind, actor  string
	fields       []storedField
	nullInFields bool // a field row with NULL columns
}

type storedField struct{ key, typ, value string }

// entry converts s, refusing anything Record would not have written.
func (s storedEntry) entry() (Entry, error) {
	switch {
	case s.v != 1 && s.v != 2:
		return Entry{}, fmt.Errorf("unknown entry version %d", s.v)
	case s.v == 2 && !s.checkpoint.Valid:
		return Entry{}, fmt.Errorf("a version 2 entry without its checkpoint size")
	case s.v == 1 && s.checkpoint.Valid:
		return Entry{}, fmt.Errorf("a version 1 entry with a checkpoint size")
	}
	if s.nullInFields {
		return Entry{}, fmt.Errorf("a field has empty columns")
	}
	t, err := parseEntryTime(s.time)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Version: int(s.v), Seq: s.seq, Checkpoint: s.checkpoint.Int64, Time: t, Kind: Kind(s.kind), Actor: s.actor}
	for _, f := range s.fields {
		typ, ok := typeByName(f.typ)
		if !ok {
			return Entry{}, fmt.Errorf("field %q has unknown type %q", f.key, f.typ)
		}
		e.Fields = append(e.Fields, Field{Key: f.key, Type: typ, Value: f.value})
	}
	return e, nil
}

// scanStored streams the rows q selects, one storedEntry per entry, in
// sequence order, within q's snapshot when q is a transaction.
func scanStored(ctx context.Context, db querier, q Query, fn func(storedEntry) error) error {
	var conds []string
	var args []any
	if !q.Since.IsZero() {
		conds, args = append(conds, "time >= ?"), append(args, formatEntryTime(q.Since))
	}
	if !q.Until.IsZero() {
		conds, args = append(conds, "time < ?"), append(args, formatEntryTime(q.Until))
	}
	if len(q.Kinds) > 0 {
		conds = append(conds, "kind IN (?"+strings.Repeat(", ?", len(q.Kinds)-1)+")")
		for _, k := range q.Kinds {
			args = append(args, string(k))
		}
	}
	for k, v := range q.Fields {
		conds = append(conds, "seq IN (SELECT seq FROM fields WHERE key = ? AND value = ?)")
		args = append(args, k, v)
	}
	if q.From > 0 {
		conds, args = append(conds, "seq >= ?"), append(args, q.From)
	}
	query := `SELECT e.seq, e.v, e.checkpoint, e.time, e.kind, e.actor, f.key, f.type, f.value
		FROM entries e LEFT JOIN fields f ON f.seq = e.seq`
	if len(conds) > 0 || q.Limit > 0 {
		limit := -1
		if q.Limit > 0 {
			limit = q.Limit
		}
		where := ""
		if len(conds) > 0 {
			where = " WHERE " + strings.Join(conds, " AND ")
		}
		query += ` WHERE e.seq IN (SELECT seq FROM entries` + where + ` ORDER BY seq LIMIT ?)`
		args = append(args, limit)
	}
	query += ` ORDER BY e.seq, f.key`
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("reading audit entries: %w", err)
	}
	defer rows.Close()
	var cur *storedEntry
	for rows.Next() {
		var s storedEntry
		var key, typ, value sql.NullString
		if err := rows.Scan(&s.seq, &s.v, &s.checkpoint, &s.time, &s.kind, &s.actor, &key, &typ, &value); err != nil {
			return fmt.Errorf("reading audit entries: %w", err)
		}
		if cur != nil && cur.seq != s.seq {
			if err := fn(*cur); err != nil {
				return err
			}
			cur = nil
		}
		if cur == nil {
			cur = &s
		}
		switch {
		case key.Valid && typ.Valid && value.Valid:
			cur.fields = append(cur.fields, storedField{key.String, typ.String, value.String})
		case key.Valid || typ.Valid || value.Valid:
			cur.nullInFields = true
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading audit entries: %w", err)
	}
	if cur != nil {
		return fn(*cur)
	}
	return nil
}
