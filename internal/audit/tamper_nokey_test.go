package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// These tests rewrite or cut audit.db the way someone without the signing
// key can: with the sqlite3 program, recomputing the stored tree hashes
// from the edited entries (they are plain SHA-256, no key needed) and
// deleting the checkpoints that would give the edit away.

// rehash replaces every stored tree hash in dir's audit.db with the hashes
// recomputed from the entries as they are now, through the sqlite3 program.
func rehash(t *testing.T, dir string) {
	t.Helper()
	l, err := Open(filepath.Join(dir, "audit.db"), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var tree []tlog.Hash
	hr := tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ix))
		for i, x := range ix {
			out[i] = tree[x]
		}
		return out, nil
	})
	err = l.Each(context.Background(), Query{}, func(e Entry) error {
		leaf, err := e.Encode()
		if err != nil {
			return err
		}
		hs, err := tlog.StoredHashes(e.Seq, leaf, hr)
		tree = append(tree, hs...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("BEGIN; DELETE FROM hashes;\n")
	for id, h := range tree {
		fmt.Fprintf(&script, "INSERT INTO hashes (id, hash) VALUES (%d, X'%x');\n", id, h[:])
	}
	script.WriteString("COMMIT;")
	sqlite(t, dir, script.String())
}

// TestTamperWithoutKey: each rewrite from the hardening review (issue 10,
// item 3), done with sqlite3 on a real audit.db; before the log recorded
// its checkpoints inside the tree and verify refused an unsigned tail,
// each of them verified as intact.
func TestTamperWithoutKey(t *testing.T) {
	edit := `UPDATE fields SET value = '4242' WHERE seq = 6 AND key = 'pid';`
	tests := []struct {
		name   string
		script string
		rehash bool
		want   string // the start of the error
		// resigned: what is left is a genuine prefix of the log, which the
		// PC cannot tell from the log as it was then: it signs it again,
		// and only the checkpoint kept off the PC shows the cut.
		resigned bool
	}{
		{"entry edited, tree rehashed, checkpoints deleted", edit + `DELETE FROM checkpoints;`, true,
			"checkpoint of size 1: missing: entry 1 records that it was signed before entry 1 was written", false},
		{"entry edited, tree rehashed, every checkpoint but the first deleted", edit + `DELETE FROM checkpoints WHERE id > 1;`, true,
			"checkpoint of size 6: missing: entry 6 records", false},
		{"one checkpoint deleted", `DELETE FROM checkpoints WHERE size = 11;`, false,
			"checkpoint of size 11: missing: entry 11 records that it was signed before entry 11 was written", false},
		{"all checkpoints deleted", `DELETE FROM checkpoints;`, false,
			"checkpoint of size 1: missing: entry 1 records", false},
		{"last entries cut with the checkpoints covering them", truncate(13) + `DELETE FROM checkpoints WHERE size > 13;`, false,
			"entries 11–12: covered by no signed checkpoint (the latest signed checkpoint covers entries 0–10)", true},
		{"last entries cut with the last checkpoint", truncate(19) + `DELETE FROM checkpoints WHERE size > 19;`, false,
			"entries 16–18: covered by no signed checkpoint", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tamperLog(t)
			key, err := ReadVerifierKey(filepath.Join(dir, "audit.key"))
			if err != nil {
				t.Fatal(err)
			}
			trusted := latestNote(t, dir)
			sqlite(t, dir, tt.script)
			if tt.rehash {
				rehash(t, dir)
			}
			for _, opts := range []VerifyOptions{{}, {Verifiers: []string{key}}} {
				ve := verifyErr(t, reopen(t, dir, true), opts)
				if !strings.HasPrefix(ve.Error(), tt.want) {
					t.Errorf("Verify(%d verifier keys) after %s = %q; want %q…", len(opts.Verifiers), tt.name, ve, tt.want)
				}
			}
			// The service opens the log again and is asked to sign it.
			l := reopen(t, dir, false)
			cp, made, err := l.CheckpointIfGrown(context.Background())
			if !tt.resigned {
				if err == nil && made {
					t.Errorf("CheckpointIfGrown after %s signed %s; want a refusal", tt.name, cp)
				}
				return
			}
			if err != nil || !made {
				t.Fatalf("CheckpointIfGrown after %s = %v, %v", tt.name, made, err)
			}
			rep := mustVerify(t, l, VerifyOptions{Verifiers: []string{key}})
			if !strings.Contains(rep.Limits(), "only a checkpoint kept off it (--trusted FILE") {
				t.Errorf("Limits() = %q; want it to say only a checkpoint kept off the PC proves the log's end", rep.Limits())
			}
			ve := verifyErr(t, l, VerifyOptions{Verifiers: []string{key}, Trusted: trusted})
			if !strings.HasPrefix(ve.Error(), "trusted checkpoint: covers 20 entries but the log has only") {
				t.Errorf("Verify(trusted) after %s = %q; want the trusted checkpoint to show the cut", tt.name, ve)
			}
		})
	}
}

// TestTamperRecordsRewritten: an attacker who also rewrites the checkpoint
// sizes the entries carry (and the stored hashes) leaves a log that agrees
// with itself up to its first checkpoint. Verify still fails until the PC
// signs it again; once it has, only a checkpoint kept off the PC shows the
// rewrite, and verify says so in plain words.
func TestTamperRecordsRewritten(t *testing.T) {
	dir := tamperLog(t)
	key, _ := ReadVerifierKey(filepath.Join(dir, "audit.key"))
	trusted := latestNote(t, dir)
	sqlite(t, dir, `UPDATE fields SET value = '4242' WHERE seq = 6 AND key = 'pid';
		UPDATE entries SET checkpoint = 1 WHERE seq >= 1; DELETE FROM checkpoints WHERE id > 1;`)
	rehash(t, dir)
	ve := verifyErr(t, reopen(t, dir, true), VerifyOptions{Verifiers: []string{key}})
	if !strings.HasPrefix(ve.Error(), "entries 1–19: covered by no signed checkpoint") {
		t.Errorf("Verify after the rewrite = %q; want entries 1–19 named as unsigned", ve)
	}
	l := reopen(t, dir, false)
	if _, err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, l, VerifyOptions{Verifiers: []string{key}})
	if !strings.Contains(rep.Limits(), "rewritten and signed again with this PC's key, looks the same on the PC") {
		t.Errorf("Limits() = %q", rep.Limits())
	}
	ve = verifyErr(t, l, VerifyOptions{Verifiers: []string{key}, Trusted: trusted})
	if !strings.HasPrefix(ve.Error(), "trusted checkpoint:") || !strings.Contains(ve.Error(), "does not extend") {
		t.Errorf("Verify(trusted) after the rewrite = %q; want the trusted checkpoint named", ve)
	}
}
