package report

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
)

// witnessedLog is a real audit log in a temporary data folder, written on
// a clock the test sets, and the config its report is made with.
type witnessedLog struct {
	t   *testing.T
	log *audit.Log
	now time.Time
	cfg *config.Config
}

var (
	year2025   = Period{From: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	reviewMade = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
)

func newWitnessedLog(t *testing.T, quorum int, ws ...*TestWitness) *witnessedLog {
	t.Helper()
	dir := t.TempDir()
	w := &witnessedLog{t: t, now: year2025.From}
	l, err := audit.OpenIn(dir, "carrel/pc-test", func() time.Time { return w.now })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	w.log = l
	w.cfg = config.Default()
	w.cfg.PC.ID, w.cfg.Storage.DataDir, w.cfg.Audit.WitnessQuorum = "pc-test", dir, quorum
	w.cfg.Library = config.Library{Name: "Bibliotek", Responsible: "Ida", Contact: "bib@example"}
	for _, x := range ws {
		w.cfg.Audit.Witnesses = append(w.cfg.Audit.Witnesses, config.Witness{Name: x.Name, URL: "https://" + x.Name, Key: x.Key})
	}
	return w
}

// grow records n entries at at and signs a checkpoint over them.
func (w *witnessedLog) grow(at time.Time, n int) audit.Checkpoint {
	w.t.Helper()
	w.now = at
	ctx := context.Background()
	for range n {
		if _, err := w.log.Record(ctx, audit.Event{Kind: audit.ServiceStart, Actor: "service", Fields: []audit.Field{audit.Token("version", "test")}}); err != nil {
			w.t.Fatal(err)
		}
	}
	cp, err := w.log.Checkpoint(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	return cp
}

// cosign stores x's cosignature on cp, dated at, as the service does with
// a witness's answer.
func (w *witnessedLog) cosign(x *TestWitness, cp audit.Checkpoint, at time.Time) string {
	w.t.Helper()
	k, err := audit.ParseWitnessKey(x.Key)
	if err != nil {
		w.t.Fatal(err)
	}
	line, err := x.Cosign(cp, at)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.log.AddCosignatures(context.Background(), x.Name, k, cp, []string{line}); err != nil {
		w.t.Fatal(err)
	}
	return line
}

// exec changes audit.db behind the log's back, as an administrator of the
// PC could.
func (w *witnessedLog) exec(query string, args ...any) {
	w.t.Helper()
	db, err := sql.Open("sqlite3", filepath.Join(w.cfg.Storage.DataDir, audit.DBFile))
	if err != nil {
		w.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		w.t.Fatalf("%s: %v", query, err)
	}
}

func (w *witnessedLog) review() *Review {
	w.t.Helper()
	return w.reviewWith(Input{})
}

// reviewWith makes the review with in's witness keys and quorum.
func (w *witnessedLog) reviewWith(in Input) *Review {
	w.t.Helper()
	in.Config, in.Now, in.Version = w.cfg, reviewMade, "test"
	f, err := Gather(context.Background(), in)
	if err != nil {
		w.t.Fatal(err)
	}
	return BuildReview(f, year2025, "en", time.UTC)
}

func must(line string, err error) string {
	if err != nil {
		panic(err)
	}
	return line
}

func rulesOf(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule)
	}
	return out
}

// witnessRules are the rules of fs about off-PC evidence (the tests' logs
// have no retention runs, which is a finding of its own).
func witnessRules(fs []Finding) []string {
	var out []string
	for _, r := range rulesOf(fs) {
		if strings.Contains(r, "witness") || strings.Contains(r, "off-pc") {
			out = append(out, r)
		}
	}
	return out
}

// TestReviewCountsVerifiedCosignatures: cosignatures stored by the
// service are what the review counts (it counted audit kinds that do not
// exist before, and said 0 for a PC witnessed all year), per witness and
// under the config's quorum.
func TestReviewCountsVerifiedCosignatures(t *testing.T) {
	w1, w2 := NewTestWitness("witness.example/w1"), NewTestWitness("witness.example/w2")
	build := func(quorum int) (*witnessedLog, []audit.Checkpoint) {
		w := newWitnessedLog(t, quorum, w1, w2)
		march := w.grow(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC), 3)
		w.cosign(w1, march, w.now.Add(time.Second))
		w.cosign(w2, march, w.now.Add(time.Minute))
		nov := w.grow(time.Date(2025, 11, 1, 9, 0, 0, 0, time.UTC), 1)
		w.cosign(w1, nov, w.now)
		dec := w.grow(time.Date(2025, 12, 20, 9, 0, 0, 0, time.UTC), 2)
		w.cosign(w1, dec, w.now)
		return w, []audit.Checkpoint{march, nov, dec}
	}

	w, cps := build(1)
	r := w.review()
	if !r.Audit.OK {
		t.Fatalf("audit log does not verify: %s", r.Audit.Problem)
	}
	if r.Audit.Witnessed != 3 {
		t.Errorf("Witnessed = %d; want 3 checkpoints cosigned in 2025", r.Audit.Witnessed)
	}
	if lw := r.Audit.LatestWitnessed; lw == nil || lw.Size != cps[2].Size || !slices.Equal(lw.By, []string{"witness.example/w1"}) {
		t.Errorf("LatestWitnessed = %+v; want size %d by w1", lw, cps[2].Size)
	}
	if len(r.Audit.Witnesses) != 2 {
		t.Fatalf("Witnesses = %+v; want w1 and w2", r.Audit.Witnesses)
	}
	a, b := r.Audit.Witnesses[0], r.Audit.Witnesses[1]
	if a.Cosignatures != 3 || a.Largest == nil || a.Largest.Size != cps[2].Size || !a.Largest.Signed.Equal(time.Date(2025, 12, 20, 9, 0, 0, 0, time.UTC)) || a.Behind != nil {
		t.Errorf("w1 = %+v; want 3 cosignatures, the largest %d on 2025-12-20, not behind", a, cps[2].Size)
	}
	if b.Cosignatures != 1 || b.Latest == nil || b.Latest.Size != cps[0].Size || b.Behind == nil || b.Behind.Entries != cps[1].Size || b.Behind.Covered != cps[0].Size {
		t.Errorf("w2 = %+v (behind %+v); want 1 cosignature of size %d, behind the %d entries of 30 days before the end", b, b.Behind, cps[0].Size, cps[1].Size)
	}
	k, _ := audit.ParseWitnessKey(w1.Key)
	if a.KeyName != w1.Name || a.KeyHash != fmt.Sprintf("%08x", k.Hash) {
		t.Errorf("w1 key = %q+%q; want its name and 8 hex digits", a.KeyName, a.KeyHash)
	}
	if got := witnessRules(r.Findings); !slices.Equal(got, []string{"witness-behind"}) {
		t.Errorf("findings = %v; want only witness-behind (w2), and no no-verified-off-pc-checkpoint", got)
	}
	text, err := Render(r, "text")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Checkpoints witnessed in the period: 3", "witness.example/w2", "witness.example/w1+" + a.KeyHash} {
		if !strings.Contains(string(text), want) {
			t.Errorf("text review lacks %q", want)
		}
	}

	// With a quorum of 2 only March's checkpoint, which both cosigned,
	// is witnessed.
	w, cps = build(2)
	r = w.review()
	if r.Audit.Witnessed != 1 || r.Audit.WitnessQuorum != 2 {
		t.Errorf("quorum 2: Witnessed = %d (quorum %d); want 1", r.Audit.Witnessed, r.Audit.WitnessQuorum)
	}
	lw := r.Audit.LatestWitnessed
	if lw == nil || lw.Size != cps[0].Size || !slices.Equal(lw.By, []string{"witness.example/w1", "witness.example/w2"}) ||
		!lw.At.Equal(time.Date(2025, 3, 1, 9, 1, 0, 0, time.UTC)) {
		t.Errorf("quorum 2: LatestWitnessed = %+v; want size %d by both, reached at w2's signature", lw, cps[0].Size)
	}
}

// TestReviewRejectsChangedCosignatures: the cosignature table is not
// hashed, so a row an administrator changed or added must not count, and
// the review says which and why. With no genuine cosignature left, the
// off-PC finding still fires.
func TestReviewRejectsChangedCosignatures(t *testing.T) {
	w1 := NewTestWitness("witness.example/w1")
	cases := []struct {
		name   string
		tamper func(w *witnessedLog, cp audit.Checkpoint, line string)
		why    string
	}{
		{"signature changed", func(w *witnessedLog, cp audit.Checkpoint, line string) {
			// The same witness name and key hash, another signature: a
			// forged cosignature.
			name, b64, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(line, "— "), "\n"), " ")
			sig, _ := base64.StdEncoding.DecodeString(b64)
			sig[len(sig)-1] ^= 1
			w.exec(`UPDATE cosignatures SET line = ?`, "— "+name+" "+base64.StdEncoding.EncodeToString(sig)+"\n")
		}, "bad-signature"},
		{"a size the log never had", func(w *witnessedLog, cp audit.Checkpoint, _ string) {
			// A checkpoint of this origin the witness did cosign, but of a
			// tree of 1000 entries this log never had (as if the log had
			// been cut back after): it vouches for nothing here.
			fake := cp
			fake.Size = 1000
			w.exec(`DELETE FROM cosignatures`)
			w.exec(`INSERT INTO checkpoints (id, size, made, note) VALUES (1000, 1000, '2025-06-01T00:00:00Z', ?)`,
				string(fake.Body())+"\n— carrel/pc-test "+base64.StdEncoding.EncodeToString(make([]byte, 68))+"\n")
			w.exec(`INSERT INTO cosignatures (checkpoint, witness, key_hash, line, signed, received) VALUES (1000, ?, 0, ?, '', '')`,
				w1.Name, must(w1.Cosign(fake, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))))
		}, "not-this-log"},
		{"another tree of the same size", func(w *witnessedLog, cp audit.Checkpoint, _ string) {
			fake := cp
			fake.Root[0] ^= 1
			w.exec(`DELETE FROM cosignatures`)
			w.exec(`INSERT INTO checkpoints (id, size, made, note) VALUES (1000, ?, '2025-06-01T00:00:00Z', ?)`,
				fake.Size, string(fake.Body())+"\n— carrel/pc-test "+base64.StdEncoding.EncodeToString(make([]byte, 68))+"\n")
			w.exec(`INSERT INTO cosignatures (checkpoint, witness, key_hash, line, signed, received) VALUES (1000, ?, 0, ?, '', '')`,
				w1.Name, must(w1.Cosign(fake, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))))
		}, "not-this-log"},
		{"checkpoint deleted", func(w *witnessedLog, cp audit.Checkpoint, _ string) {
			w.exec(`UPDATE cosignatures SET checkpoint = 999`)
		}, "checkpoint-missing"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			w := newWitnessedLog(t, 1, w1)
			cp := w.grow(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC), 3)
			line := w.cosign(w1, cp, w.now)
			if r := w.review(); r.Audit.Witnessed != 1 {
				t.Fatalf("before the change: Witnessed = %d; want 1", r.Audit.Witnessed)
			}
			tt.tamper(w, cp, line)
			r := w.review()
			if r.Audit.Witnessed != 0 || r.Audit.LatestWitnessed != nil || r.Audit.Witnesses[0].Cosignatures != 0 {
				t.Errorf("Witnessed = %d, latest %+v, w1 %+v; want nothing counted", r.Audit.Witnessed, r.Audit.LatestWitnessed, r.Audit.Witnesses[0])
			}
			if got := r.Audit.CosignaturesRejected; len(got) != 1 || got[0].Why != tt.why || got[0].Witness != w1.Name {
				t.Errorf("CosignaturesRejected = %+v; want one by w1, %s", got, tt.why)
			}
			got := rulesOf(r.Findings)
			for _, want := range []string{"no-verified-off-pc-checkpoint", "witness-cosignature-rejected"} {
				if !slices.Contains(got, want) {
					t.Errorf("findings = %v; want %s", got, want)
				}
			}
			text, err := Render(r, "text")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(text), "1 stored cosignatures claim a configured witness but were not counted") {
				t.Errorf("text review does not say a cosignature was not counted:\n%s", text)
			}
		})
	}
}

// TestReviewUnreadableCosignatureLine: a stored line that does not parse
// names no key, so it is judged by the witness and key hash its row
// claims: a bad signature of that witness (not of whichever witness the
// config lists first), or unchecked when it claims no configured witness.
func TestReviewUnreadableCosignatureLine(t *testing.T) {
	w1, w2 := NewTestWitness("witness.example/w1"), NewTestWitness("witness.example/w2")
	w := newWitnessedLog(t, 1, w1, w2)
	cp := w.grow(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC), 3)
	w.cosign(w1, cp, w.now)
	w.cosign(w2, cp, w.now)
	w.exec(`UPDATE cosignatures SET line = 'not a signature line' WHERE witness = ?`, w2.Name)
	r := w.review()
	if got := r.Audit.CosignaturesRejected; len(got) != 1 || got[0].Witness != w2.Name || got[0].Why != "bad-signature" {
		t.Errorf("CosignaturesRejected = %+v; want one by %s, bad-signature", got, w2.Name)
	}
	if r.Audit.Witnesses[0].Cosignatures != 1 || r.Audit.Witnesses[1].Cosignatures != 0 {
		t.Errorf("witnesses = %+v; want w1's cosignature counted and w2's not", r.Audit.Witnesses)
	}
	w.exec(`UPDATE cosignatures SET witness = 'witness.example/w3' WHERE witness = ?`, w2.Name)
	r = w.review()
	if len(r.Audit.CosignaturesRejected) != 0 || r.Audit.CosignaturesUnchecked != 1 {
		t.Errorf("rejected %+v, unchecked %d; want the line claiming no configured witness unchecked",
			r.Audit.CosignaturesRejected, r.Audit.CosignaturesUnchecked)
	}
}

// TestReviewWithWitnessKeysFromOffThePC: whoever administers the PC can
// put a witness of their own making into the config and store its
// cosignatures on a rewritten log; the review then calls the log
// witnessed. With the real witness's key given off the PC, those
// cosignatures are not counted (they are by a key not given), the real
// witness's are, under the config's name for it, and the review says
// where the keys came from.
func TestReviewWithWitnessKeysFromOffThePC(t *testing.T) {
	real, forged := NewTestWitness("witness.example/w1"), NewTestWitness("witness.example/w1-forged")
	w := newWitnessedLog(t, 1, forged)
	w.cfg.Audit.Witnesses[0].Name = "w1"
	cp := w.grow(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC), 3)
	w.cosign(forged, cp, w.now)
	if r := w.reviewWith(Input{}); r.Audit.Witnessed != 1 || r.Audit.WitnessKeysGiven {
		t.Fatalf("with the config's keys: Witnessed = %d, keys given %v; want 1 (the forged witness), false", r.Audit.Witnessed, r.Audit.WitnessKeysGiven)
	}
	r := w.reviewWith(Input{WitnessKeys: []string{real.Key}, WitnessQuorum: 1})
	if r.Audit.Witnessed != 0 || r.Audit.CosignaturesUnchecked != 1 || !r.Audit.WitnessKeysGiven {
		t.Errorf("with the real key: Witnessed = %d, unchecked %d, keys given %v; want 0, 1, true",
			r.Audit.Witnessed, r.Audit.CosignaturesUnchecked, r.Audit.WitnessKeysGiven)
	}
	if got := rulesOf(r.Findings); !slices.Contains(got, "no-verified-off-pc-checkpoint") {
		t.Errorf("findings = %v; want no-verified-off-pc-checkpoint", got)
	}
	if len(r.Audit.Witnesses) != 1 || r.Audit.Witnesses[0].Key != real.Key {
		t.Errorf("witnesses = %+v; want the one given", r.Audit.Witnesses)
	}
	text, err := Render(r, "text")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "given for this report from off the PC") {
		t.Errorf("the text review does not say the keys were given off the PC:\n%s", text)
	}

	// The config names the real witness: its cosignatures count under the
	// config's name, with the key given.
	w.cfg.Audit.Witnesses = []config.Witness{{Name: "w1", URL: "https://w1", Key: real.Key}}
	w.cosign(real, cp, w.now)
	r = w.reviewWith(Input{WitnessKeys: []string{real.Key}})
	if r.Audit.Witnessed != 1 || r.Audit.Witnesses[0].Name != "w1" {
		t.Errorf("Witnessed = %d, witnesses %+v; want 1, by w1", r.Audit.Witnessed, r.Audit.Witnesses)
	}
}

// TestReviewPendingRefusalFromLog: whether a refusal waits for an
// acknowledgement is read from the hashed log, not from the witnesses
// table, which an administrator could change to hide it.
func TestReviewPendingRefusalFromLog(t *testing.T) {
	w1 := NewTestWitness("witness.example/w1")
	k, err := audit.ParseWitnessKey(w1.Key)
	if err != nil {
		t.Fatal(err)
	}
	w := newWitnessedLog(t, 1, w1)
	cp := w.grow(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC), 3)
	w.cosign(w1, cp, w.now)
	w.now = time.Date(2025, 12, 28, 9, 0, 0, 0, time.UTC)
	ctx := context.Background()
	if _, _, err := w.log.WitnessRefused(ctx, w1.Name, k.Text, audit.Refusal{Why: audit.RefusedRolledBack, WitnessSize: 40, LogSize: cp.Size}); err != nil {
		t.Fatal(err)
	}
	w.grow(w.now, 0)
	w.exec(`UPDATE witnesses SET acked_at = '2025-12-29T00:00:00Z', acked_by = 'uid:0'`)
	r := w.review()
	p := r.Audit.PendingRefusals
	if len(p) != 1 || p[0].Witness != w1.Name || p[0].Why != audit.RefusedRolledBack || !p[0].Since.Equal(w.now) || p[0].WitnessSize != 40 {
		t.Fatalf("PendingRefusals = %+v; want w1's rolled-back refusal of 2025-12-28", p)
	}
	if r.Audit.Witnesses[0].Refusal == nil {
		t.Errorf("w1's row shows no pending refusal")
	}
	if !slices.Contains(rulesOf(r.Findings), "witness-refusal-unacknowledged") {
		t.Errorf("findings = %v; want witness-refusal-unacknowledged", rulesOf(r.Findings))
	}

	w.exec(`UPDATE witnesses SET acked_at = '', acked_by = ''`)
	w.now = w.now.Add(time.Hour)
	if _, err := w.log.AcknowledgeRefusal(ctx, w1.Name, "uid:0"); err != nil {
		t.Fatal(err)
	}
	w.grow(w.now, 0)
	r = w.review()
	if len(r.Audit.PendingRefusals) != 0 || slices.Contains(rulesOf(r.Findings), "witness-refusal-unacknowledged") {
		t.Errorf("after witness.acknowledged: PendingRefusals = %+v, findings %v; want none", r.Audit.PendingRefusals, rulesOf(r.Findings))
	}
	// The refusal of the period is still counted.
	if !slices.Contains(rulesOf(r.Findings), "witness-refused") {
		t.Errorf("findings = %v; want witness-refused for the period's refusal", rulesOf(r.Findings))
	}
}
