package audit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/testenv"
	"golang.org/x/mod/sumdb/tlog"
)

// These tests tamper with audit.db the way an administrator on the PC
// could: with the sqlite3 command-line tool, behind carrel's back. Each
// must make Verify fail and name what was changed.

// tamperLog returns a closed log of 20 entries with checkpoints at sizes
// 1 (signed when the log was made), 6, 11, 16 and 20 (ids 1 to 5), and its
// folder.
func tamperLog(t *testing.T) string {
	t.Helper()
	l, dir := testLog(t)
	fill(t, l, 19, 5)
	if err := l.Close(); err != nil { // signs the checkpoint of size 20
		t.Fatal(err)
	}
	return dir
}

// sqlite runs script on dir's audit.db with the sqlite3 program.
func sqlite(t *testing.T, dir, script string) {
	t.Helper()
	bin := testenv.NeedTool(t, "sqlite3")
	out, err := exec.Command(bin, filepath.Join(dir, "audit.db"), script).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %q: %v\n%s", script, err, out)
	}
}

func TestTamperOneEntry(t *testing.T) {
	tests := []struct {
		name, script, want string
	}{
		{"field value", `UPDATE fields SET value = '4242' WHERE seq = 6 AND key = 'pid'`, "entry 6"},
		{"field type", `UPDATE fields SET type = 'token' WHERE seq = 3 AND key = 'deleted'`, "entry 3"},
		{"field key", `UPDATE fields SET key = 'interfaces' WHERE seq = 4 AND key = 'interface'`, "entry 4"},
		{"field added", `INSERT INTO fields (seq, key, type, value) VALUES (7, 'extra', 'token', 'x')`, "entry 7"},
		{"field removed", `DELETE FROM fields WHERE seq = 8 AND key = 'from'`, "entry 8"},
		{"time", `UPDATE entries SET time = '2030-01-01T00:00:00.000000000Z' WHERE seq = 9`, "entry 9"},
		{"time respelled", `UPDATE entries SET time = replace(time, '.000000000Z', 'Z') WHERE seq = 9`, "entry 9"},
		{"kind", `UPDATE entries SET kind = 'capture.stop' WHERE seq = 4`, "entry 4"},
		{"actor", `UPDATE entries SET actor = 'someone' WHERE seq = 12`, "entry 12"},
		{"version", `UPDATE entries SET v = 3 WHERE seq = 10`, "entry 10"},
		{"version 1 with its checkpoint size", `UPDATE entries SET v = 1 WHERE seq = 10`, "entry 10"},
		{"version 1 form", `UPDATE entries SET v = 1, checkpoint = NULL WHERE seq = 10`, "entry 10"},
		{"checkpoint size", `UPDATE entries SET checkpoint = 1 WHERE seq = 8`, "entry 8"},
		{"checkpoint size removed", `UPDATE entries SET checkpoint = NULL WHERE seq = 8`, "entry 8"},
		{"leaf hash", fmt.Sprintf(`UPDATE hashes SET hash = randomblob(32) WHERE id = %d`, tlog.StoredHashIndex(0, 5)), "entry 5"},
		{"interior hash", fmt.Sprintf(`UPDATE hashes SET hash = randomblob(32) WHERE id = %d`, tlog.StoredHashIndex(2, 1)), fmt.Sprintf("tree hash %d", tlog.StoredHashIndex(2, 1))},
		{"hash deleted", fmt.Sprintf(`DELETE FROM hashes WHERE id = %d`, tlog.StoredHashIndex(0, 11)), "entry 11"},
		{"checkpoint body", `UPDATE checkpoints SET note = replace(note, char(10) || '11' || char(10), char(10) || '12' || char(10)) WHERE id = 3`, "checkpoint 3 (size 11)"},
		{"checkpoint size column", `UPDATE checkpoints SET size = 12 WHERE id = 3`, "checkpoint 3 (size 12)"},
		{"checkpoint replaced by older", `UPDATE checkpoints SET note = (SELECT note FROM checkpoints WHERE id = 2), size = 6 WHERE id = 4`, "checkpoint 4 (size 6)"},
		{"extra signing key", `INSERT INTO keys (verifier, added) VALUES ('carrel/pc-01+ab2cd60d+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c', 'x')`, "signing key"},
		{"origin", `UPDATE meta SET value = 'carrel/pc-99' WHERE key = 'origin'`, "checkpoint 1 (size 1)"},
		// With several changes, the first entry is named, whichever check
		// finds it.
		{"unreadable after changed", `UPDATE entries SET v = 3 WHERE seq = 9; UPDATE fields SET value = '4242' WHERE seq = 6 AND key = 'pid'`, "entry 6"},
		{"unreadable before changed", `UPDATE entries SET v = 3 WHERE seq = 4; UPDATE fields SET value = '4242' WHERE seq = 6 AND key = 'pid'`, "entry 4"},
		{"gap after changed", `DELETE FROM entries WHERE seq = 12; UPDATE fields SET value = '4242' WHERE seq = 6 AND key = 'pid'`, "entry 6"},
		{"interior hash before changed", fmt.Sprintf(`UPDATE hashes SET hash = randomblob(32) WHERE id = %d; UPDATE entries SET actor = 'x' WHERE seq = 14`, tlog.StoredHashIndex(1, 2)), fmt.Sprintf("tree hash %d", tlog.StoredHashIndex(1, 2))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tamperLog(t)
			mustVerify(t, reopen(t, dir, true), VerifyOptions{})
			sqlite(t, dir, tt.script)
			ve := verifyErr(t, reopen(t, dir, true), VerifyOptions{})
			if !strings.HasPrefix(ve.Error(), tt.want+":") {
				t.Errorf("Verify after %s = %q; want it to name %q", tt.name, ve, tt.want)
			}
		})
	}
}

func TestTamperDeleteAndSwap(t *testing.T) {
	swap := func(a, b int) string {
		return fmt.Sprintf(`UPDATE entries SET seq = -1 WHERE seq = %[1]d; UPDATE entries SET seq = %[1]d WHERE seq = %[2]d; UPDATE entries SET seq = %[2]d WHERE seq = -1;
			UPDATE fields SET seq = -1 WHERE seq = %[1]d; UPDATE fields SET seq = %[1]d WHERE seq = %[2]d; UPDATE fields SET seq = %[2]d WHERE seq = -1;`, a, b)
	}
	tests := []struct {
		name, script, want string
	}{
		{"delete middle", `DELETE FROM fields WHERE seq = 7; DELETE FROM entries WHERE seq = 7`, "entry 7"},
		{"delete entry, keep fields", `DELETE FROM entries WHERE seq = 7`, "entry 7"},
		{"delete first", `DELETE FROM fields WHERE seq = 0; DELETE FROM entries WHERE seq = 0`, "entry 0"},
		{"delete last", `DELETE FROM fields WHERE seq = 19; DELETE FROM entries WHERE seq = 19`, "entry 19"},
		{"delete last with its hashes", fmt.Sprintf(`DELETE FROM fields WHERE seq = 19; DELETE FROM entries WHERE seq = 19; DELETE FROM hashes WHERE id >= %d`,
			tlog.StoredHashIndex(0, 19)), "checkpoint 5 (size 20)"},
		{"swap two", swap(4, 9), "entry 4"},
		{"swap neighbours", swap(12, 13), "entry 12"},
		{"renumber to close a gap", `DELETE FROM fields WHERE seq = 7; DELETE FROM entries WHERE seq = 7;
			UPDATE entries SET seq = seq - 1 WHERE seq > 7; UPDATE fields SET seq = seq - 1 WHERE seq > 7`, "entry 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tamperLog(t)
			sqlite(t, dir, tt.script)
			ve := verifyErr(t, reopen(t, dir, true), VerifyOptions{})
			if !strings.HasPrefix(ve.Error(), tt.want+":") {
				t.Errorf("Verify after %s = %q; want it to name %q", tt.name, ve, tt.want)
			}
		})
	}
}

// truncate deletes entry `from` and everything after it, with their tree
// hashes, as a careful attacker would.
func truncate(from int64) string {
	return fmt.Sprintf(`DELETE FROM fields WHERE seq >= %[1]d; DELETE FROM entries WHERE seq >= %[1]d; DELETE FROM hashes WHERE id >= %[2]d;`,
		from, tlog.StoredHashIndex(0, from))
}

func TestTamperTruncateAndAppend(t *testing.T) {
	dir := tamperLog(t)
	sqlite(t, dir, truncate(12))
	l := reopen(t, dir, false)
	fill(t, l, 10, 0) // carrel goes on writing after the attack
	ve := verifyErr(t, l, VerifyOptions{})
	if !strings.HasPrefix(ve.Error(), "checkpoint 4 (size 16):") {
		t.Errorf("Verify after truncate and append = %q; want it to name checkpoint 4", ve)
	}
	// The PC refuses to sign over the rewritten history.
	if _, err := l.Checkpoint(context.Background()); err == nil || !strings.Contains(err.Error(), "refusing to sign") {
		t.Errorf("Checkpoint after truncate and append = %v; want a refusal", err)
	}
}

func TestTamperTruncateDropCheckpoints(t *testing.T) {
	dir := tamperLog(t)
	trusted := latestNote(t, dir)
	sqlite(t, dir, truncate(12)+` DELETE FROM checkpoints WHERE size > 11;`)
	l := reopen(t, dir, false)
	fill(t, l, 10, 0)
	if _, err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	// With the checkpoints gone too, the log agrees with itself: only a
	// checkpoint kept off the PC shows the rewrite. That is its purpose.
	mustVerify(t, l, VerifyOptions{})
	ve := verifyErr(t, l, VerifyOptions{Trusted: trusted})
	if !strings.HasPrefix(ve.Error(), "trusted checkpoint:") || !strings.Contains(ve.Error(), "does not extend") {
		t.Errorf("Verify(trusted) after truncate, append, re-sign = %q; want the trusted checkpoint named", ve)
	}
}

func latestNote(t *testing.T, dir string) []byte {
	t.Helper()
	cp, err := reopen(t, dir, true).Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cp.Note
}

func removeLog(t *testing.T, dir string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(filepath.Join(dir, "audit.db"+suffix)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// TestTamperReplaceLog: the whole log is swapped for a fresh one, signed
// with the PC's own key or with a new key.
func TestTamperReplaceLog(t *testing.T) {
	tests := []struct {
		name       string
		newKey     bool
		entries    int
		verifiers  bool // check with the head librarian's verifier key
		trusted    bool
		wantPrefix string
		wantText   string
	}{
		{"same key, longer, trusted", false, 30, false, true, "trusted checkpoint:", "does not extend"},
		{"same key, shorter, trusted", false, 3, false, true, "trusted checkpoint:", "has only 4"},
		{"same key, same length, trusted", false, 19, false, true, "trusted checkpoint:", "does not extend"},
		{"new key, trusted", true, 30, false, true, "trusted checkpoint:", "not signed by a trusted key"},
		{"new key, verifier", true, 30, true, false, "checkpoint 1 (size 1):", "not signed by a trusted key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tamperLog(t)
			trusted := latestNote(t, dir)
			oldKey, err := ReadVerifierKey(filepath.Join(dir, "audit.key"))
			if err != nil {
				t.Fatal(err)
			}
			removeLog(t, dir)
			if tt.newKey {
				os.Remove(filepath.Join(dir, "audit.key"))
			}
			l := reopen(t, dir, false)
			fill(t, l, tt.entries, 0)
			if _, err := l.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
			mustVerify(t, l, VerifyOptions{}) // a fresh log is consistent with itself
			var opts VerifyOptions
			if tt.trusted {
				opts.Trusted = trusted
			}
			if tt.verifiers {
				opts.Verifiers = []string{oldKey}
			}
			ve := verifyErr(t, l, opts)
			if !strings.HasPrefix(ve.Error(), tt.wantPrefix) || !strings.Contains(ve.Error(), tt.wantText) {
				t.Errorf("Verify(replaced log) = %q; want %q … %q", ve, tt.wantPrefix, tt.wantText)
			}
		})
	}
}

// TestTrustedAndVerifierPassOnGenuineLog: the same options that catch a
// replaced log accept the real one after it grew.
func TestTrustedAndVerifierPassOnGenuineLog(t *testing.T) {
	dir := tamperLog(t)
	trusted := latestNote(t, dir)
	key, err := ReadVerifierKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	l := reopen(t, dir, false)
	fill(t, l, 7, 3)
	if _, err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, l, VerifyOptions{Trusted: trusted, Verifiers: []string{key}})
	if rep.Trusted == nil || rep.Trusted.Size != 20 || rep.Entries != 27 {
		t.Errorf("Verify(trusted, verifier) = %+v; want 27 entries extending the trusted 20", rep)
	}
	if !strings.Contains(rep.String(), "extends the trusted checkpoint of size 20") {
		t.Errorf("Report.String() = %q; want it to mention the trusted checkpoint", rep)
	}
}

// TestKeyReplacedIsRecorded: a lost key is replaced and the log says so;
// old checkpoints still verify with the keys the log recorded.
func TestKeyReplacedIsRecorded(t *testing.T) {
	ctx := context.Background()
	dir := tamperLog(t)
	oldKey, _ := ReadVerifierKey(filepath.Join(dir, "audit.key"))
	os.Remove(filepath.Join(dir, "audit.key"))
	l := reopen(t, dir, false)
	if l.Verifier() == oldKey {
		t.Fatal("a removed key came back")
	}
	es, err := l.Entries(ctx, Query{Kinds: []Kind{KeyCreated}})
	if err != nil || len(es) != 2 {
		t.Fatalf("key.created entries = %d, %v; want 2", len(es), err)
	}
	fill(t, l, 2, 0)
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, l, VerifyOptions{})
	if len(rep.Keys) != 2 {
		t.Errorf("Verify().Keys = %v; want both keys", rep.Keys)
	}
	mustVerify(t, l, VerifyOptions{Verifiers: []string{oldKey, l.Verifier()}})
	ve := verifyErr(t, l, VerifyOptions{Verifiers: []string{l.Verifier()}})
	if !strings.HasPrefix(ve.Error(), "checkpoint 1 (size 1):") {
		t.Errorf("Verify(only the new key) = %q; want checkpoint 1 named", ve)
	}
}
