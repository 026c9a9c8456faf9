package seal

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/carrel-lib/carrel/internal/audit"
)

// The outbox makes "change the index, then tell the audit log" crash-safe:
// the event is written in the same transaction as the change it reports,
// recorded with Event.Once set to its outbox key, and only then deleted. A
// crash between the steps leaves the row, and Forward records it again —
// the audit log's Once makes that second Record a no-op if the first got
// through. So an entry is neither lost nor doubled.

// outboxField is the stored form of an audit.Field.
type outboxField struct {
	K string          `json:"k"`
	T audit.FieldType `json:"t"`
	V string          `json:"v"`
}

// enqueue adds e to the outbox inside tx. e.Once must be set.
func (s *Store) enqueue(ctx context.Context, tx *sql.Tx, e audit.Event) error {
	if e.Actor == "" {
		e.Actor = s.actor
	}
	// Check now: a bad event must fail the change, not sit in the outbox.
	if err := e.Check(); err != nil {
		return err
	}
	fs := make([]outboxField, len(e.Fields))
	for i, f := range e.Fields {
		fs[i] = outboxField{K: f.Key, T: f.Type, V: f.Value}
	}
	b, err := json.Marshal(fs)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO outbox (once, kind, actor, fields) VALUES (?, ?, ?, ?)`,
		e.Once, string(e.Kind), e.Actor, string(b))
	if err != nil {
		return fmt.Errorf("queueing audit entry %s: %w", e.Kind, err)
	}
	return nil
}

// Forward records every queued audit entry, oldest first. The daemon calls
// it after the audit log was unavailable; Open calls it too.
func (s *Store) Forward(ctx context.Context) error {
	if s.rec == nil {
		return errInspectOnly
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rows, err := s.db.QueryContext(ctx, `SELECT id, once, kind, actor, fields FROM outbox ORDER BY id`)
	if err != nil {
		return fmt.Errorf("reading audit outbox: %w", err)
	}
	type item struct {
		id int64
		e  audit.Event
	}
	var items []item
	for rows.Next() {
		var it item
		var kind, fields string
		if err := rows.Scan(&it.id, &it.e.Once, &kind, &it.e.Actor, &fields); err != nil {
			rows.Close()
			return fmt.Errorf("reading audit outbox: %w", err)
		}
		it.e.Kind = audit.Kind(kind)
		var fs []outboxField
		if err := json.Unmarshal([]byte(fields), &fs); err != nil {
			rows.Close()
			return fmt.Errorf("audit outbox entry %d: %w", it.id, err)
		}
		for _, f := range fs {
			it.e.Fields = append(it.e.Fields, audit.Field{Key: f.K, Type: f.T, Value: f.V})
		}
		items = append(items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading audit outbox: %w", err)
	}
	for _, it := range items {
		if _, err := s.rec.Record(ctx, it.e); err != nil {
			return fmt.Errorf("recording %s: %w", it.e.Kind, err)
		}
		if _, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, it.id); err != nil {
			return fmt.Errorf("clearing audit outbox: %w", err)
		}
	}
	return nil
}

// randomOnce returns an outbox key for events that have no natural one.
func randomOnce(kind audit.Kind) string {
	var b [16]byte
	rand.Read(b[:])
	return string(kind) + ":" + hex.EncodeToString(b[:])
}

// PendingAudit returns how many audit entries wait in the outbox, for
// `carrel status`.
func (s *Store) PendingAudit(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("reading audit outbox: %w", err)
	}
	return n, nil
}
