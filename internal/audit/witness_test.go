package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// testWitness is a witness's signing side, made with torchwood's
// cosignature signer (the code litewitness signs with).
type testWitness struct {
	signer *torchwood.CosignatureSigner
	key    WitnessKey
}

func newTestWitness(t testing.TB, name string) testWitness {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := torchwood.NewCosignatureSigner(name, priv)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseWitnessKey(s.Verifier().String())
	if err != nil {
		t.Fatalf("ParseWitnessKey(%q): %v", s.Verifier().String(), err)
	}
	return testWitness{signer: s, key: k}
}

// cosign returns the witness's cosignature line on cp, as litewitness
// answers add-checkpoint.
func (w testWitness) cosign(t testing.TB, cp Checkpoint) string {
	t.Helper()
	signed, err := note.Sign(&note.Note{Text: string(cp.Body())}, w.signer)
	if err != nil {
		t.Fatal(err)
	}
	s := string(signed)
	return s[strings.LastIndex(s, "\n\n")+2:]
}

func TestParseWitnessKey(t *testing.T) {
	// A key whose hash holds a letter, so that its upper-case spelling
	// differs (a random hash has none in 2.3 % of keys: the upper-case
	// case then tested the good key).
	var good, name, hash, key64 string
	for hash == strings.ToUpper(hash) {
		good = newTestWitness(t, "witness.example/w1").key.Text
		var rest string
		name, rest, _ = strings.Cut(good, "+")
		hash, key64, _ = strings.Cut(rest, "+")
	}
	raw, _ := base64.StdEncoding.DecodeString(key64)
	withType := func(b byte) string {
		r := append([]byte{b}, raw[1:]...)
		return name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(r)
	}
	_, logKey, err := note.GenerateKey(rand.Reader, "carrel/pc-01")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, vkey, want string
	}{
		{"good", good, ""},
		{"log key", logKey, "plain Ed25519 note key"},
		{"unknown type", withType(7), "key type 7"},
		{"wrong hash", name + "+00000000+" + key64, "does not match"},
		{"short hash", name + "+abc+" + key64, "8 hex digits"},
		{"upper-case hash", name + "+" + strings.ToUpper(hash) + "+" + key64, "canonical"},
		{"other name", "witness.example/w2+" + hash + "+" + key64, "does not match"},
		{"space in name", "a b+" + hash + "+" + key64, "spaces"},
		{"control in name", "a\x1bb+" + hash + "+" + key64, "control"},
		{"no parts", "nothing", "NAME+HASH+KEY"},
		{"bad base64", name + "+" + hash + "+!!!", "not base64"},
		{"short key", name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(raw[:20]), "bytes"},
		{"trailing newline", good + "\n", "canonical"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseWitnessKey(tc.vkey)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ParseWitnessKey(%q) = %v; want success", tc.vkey, err)
			case tc.want == "" && (k.Name != name || k.Text != good):
				t.Fatalf("ParseWitnessKey = %+v; want name %q", k, name)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("ParseWitnessKey(%q) = %v; want an error containing %q", tc.vkey, err, tc.want)
			}
		})
	}
}

func TestVerifyCosignature(t *testing.T) {
	l, _ := testLog(t)
	ctx := context.Background()
	fill(t, l, 3, 0)
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w1, w2 := newTestWitness(t, "w1"), newTestWitness(t, "w2")
	line := w1.cosign(t, cp)
	c, k, err := VerifyCosignature(cp, line, []WitnessKey{w2.key, w1.key})
	if err != nil || k.Text != w1.key.Text || c.Witness != "w1" || c.Signed.IsZero() {
		t.Fatalf("VerifyCosignature = %+v, %v, %v; want w1's", c, k.Text, err)
	}
	if _, _, err := VerifyCosignature(cp, line, []WitnessKey{w2.key}); !errors.Is(err, ErrUnknownWitness) {
		t.Errorf("with only w2's key: %v; want ErrUnknownWitness", err)
	}
	// Another checkpoint of the same log: the cosignature is not for it.
	fill(t, l, 1, 0)
	cp2, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := VerifyCosignature(cp2, line, []WitnessKey{w1.key}); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("w1's cosignature on size %d checked on size %d: %v; want does not verify", cp.Size, cp2.Size, err)
	}
	// One bit of the signature flipped.
	name, sig, _ := splitSignatureLine(line)
	sig[len(sig)-1] ^= 1
	flipped := "— " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
	if _, _, err := VerifyCosignature(cp, flipped, []WitnessKey{w1.key}); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("flipped cosignature: %v; want does not verify", err)
	}
}

func TestParseCosignatures(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"one", "— w1 AAAAAAAA\n", ""},
		{"two", "— w1 AAAAAAAA\n— w2 AAAAAAAB\n", ""},
		{"empty", "", "empty"},
		{"no newline", "— w1 AAAAAAAA", "newline"},
		{"repeated", "— w1 AAAAAAAA\n— w1 AAAAAAAA\n", "repeated"},
		{"blank line", "— w1 AAAAAAAA\n\n", "malformed"},
		{"not a line", "<html>oops</html>\n", "malformed"},
		{"padding bits", "— w1 AAAAAAAB=\n", "canonical"},
		{"too many", strings.Repeat("x", 0) + manyLines(maxCosignatureLines+1), "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCosignatures([]byte(tc.body))
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("ParseCosignatures(%q) = %v; want %q", tc.body, err, tc.want)
			}
		})
	}
}

func manyLines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "— w%d AAAAAAAA\n", i)
	}
	return b.String()
}

// witnessedLog returns a closed log whose checkpoints of sizes 6 and 11
// carry w1's cosignature and the one of size 11 also w2's, and its folder.
func witnessedLog(t *testing.T, w1, w2 testWitness) string {
	t.Helper()
	l, dir := testLog(t)
	ctx := context.Background()
	for i, ws := range [][]testWitness{{w1}, {w1, w2}} {
		fill(t, l, 5, 0)
		cp, err := l.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			got, err := l.AddCosignatures(ctx, w.key.Name, w.key, cp, []string{w.cosign(t, cp)})
			if err != nil || len(got) != 1 {
				t.Fatalf("round %d: AddCosignatures(%s) = %v, %v", i, w.key.Name, got, err)
			}
		}
	}
	fill(t, l, 2, 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCosignaturesStoredAndVerified(t *testing.T) {
	w1, w2 := newTestWitness(t, "w1"), newTestWitness(t, "w2")
	dir := witnessedLog(t, w1, w2)
	l := reopen(t, dir, true)
	ctx := context.Background()
	keys := []string{w1.key.Text, w2.key.Text}

	rep, err := l.Verify(ctx, VerifyOptions{WitnessKeys: keys, Quorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cosignatures != 3 || rep.Witnessed == nil || rep.Witnessed.Size != 11 || len(rep.WitnessedBy) != 2 {
		t.Fatalf("Verify = %d cosignatures, witnessed %v by %v; want 3, size 11 by w1 and w2", rep.Cosignatures, rep.Witnessed, rep.WitnessedBy)
	}
	if !strings.Contains(rep.String(), "witnessed up to 11 by w1, w2") || !strings.Contains(rep.Limits(), "entries 11–12 rest on this PC's key alone") {
		t.Errorf("report:\n%s\n%s", rep, rep.Limits())
	}
	// With only w2's key, w1's cosignatures are unchecked, not failures.
	rep, err = l.Verify(ctx, VerifyOptions{WitnessKeys: keys[1:]})
	if err != nil || rep.Cosignatures != 1 || rep.Unchecked != 2 || rep.Witnessed == nil || rep.Witnessed.Size != 11 {
		t.Fatalf("Verify with w2 only = %+v, %v", rep, err)
	}
	// No checkpoint has three cosignatures.
	if rep, err := l.Verify(ctx, VerifyOptions{WitnessKeys: keys, Quorum: 3}); err != nil || rep.Witnessed != nil {
		t.Fatalf("quorum 3: witnessed %v, %v; want none", rep.Witnessed, err)
	}

	cc, err := l.LatestCosigned(ctx, []WitnessKey{w1.key, w2.key}, 1)
	if err != nil || cc.Checkpoint.Size != 11 || len(cc.Cosignatures) != 2 {
		t.Fatalf("LatestCosigned = %+v, %v; want size 11 with two cosignatures", cc, err)
	}
	// The cosigned note is a trusted checkpoint, and its cosignatures are
	// checked on the way.
	rep, err = l.Verify(ctx, VerifyOptions{Trusted: cc.Note(), WitnessKeys: keys})
	if err != nil || rep.Trusted == nil || rep.Trusted.Size != 11 || len(rep.TrustedWitnesses) != 2 {
		t.Fatalf("Verify --trusted cosigned = %+v, %v", rep, err)
	}
	bad := []byte(strings.Replace(string(cc.Note()), "— w2 ", "— w2 A", 1))
	if _, err := l.Verify(ctx, VerifyOptions{Trusted: bad, WitnessKeys: keys}); !errors.Is(err, ErrTampered) {
		t.Errorf("trusted checkpoint with a changed cosignature: %v; want ErrTampered", err)
	}
	if _, err := l.LatestCosigned(ctx, []WitnessKey{w1.key, w2.key}, 3); !errors.Is(err, ErrNotWitnessed) {
		t.Errorf("LatestCosigned quorum 3 = %v; want ErrNotWitnessed", err)
	}
}

// An administrator who changes a stored cosignature, or moves it to
// another checkpoint, is caught.
func TestTamperCosignature(t *testing.T) {
	w1, w2 := newTestWitness(t, "w1"), newTestWitness(t, "w2")
	tests := []struct {
		name, script, want string
	}{
		{"signature byte", `UPDATE cosignatures SET line = substr(line, 1, length(line) - 3) || CASE WHEN substr(line, -3, 1) = 'A' THEN 'B' ELSE 'A' END || substr(line, -2)
			WHERE checkpoint = 3 AND witness = 'w2'`, "cosignature by w2 on checkpoint 3 (size 11): cosignature by w2"},
		{"moved to another checkpoint", `UPDATE cosignatures SET checkpoint = 2 WHERE witness = 'w2'`, "does not verify"},
		{"renamed", `UPDATE cosignatures SET witness = 'w3' WHERE checkpoint = 2`, "names another witness"},
		{"checkpoint deleted", `PRAGMA foreign_keys = OFF; DELETE FROM checkpoints WHERE id = 2`, "checkpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := witnessedLog(t, w1, w2)
			l := reopen(t, dir, true)
			if _, err := l.Verify(context.Background(), VerifyOptions{WitnessKeys: []string{w1.key.Text, w2.key.Text}}); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			l.Close()
			sqlite(t, dir, tc.script)
			l = reopen(t, dir, true)
			_, err := l.Verify(context.Background(), VerifyOptions{WitnessKeys: []string{w1.key.Text, w2.key.Text}})
			if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify after %s = %v; want ErrTampered naming %q", tc.name, err, tc.want)
			}
		})
	}
}

func TestAddCosignaturesRefusesBadAnswers(t *testing.T) {
	l, _ := testLog(t)
	ctx := context.Background()
	fill(t, l, 3, 0)
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w1, other := newTestWitness(t, "w1"), newTestWitness(t, "w1")
	if _, err := l.AddCosignatures(ctx, "w1", w1.key, cp, []string{other.cosign(t, cp)}); err == nil || !strings.Contains(err.Error(), "without a cosignature by its key") {
		t.Errorf("a cosignature by another key of the same name: %v", err)
	}
	unstored := cp
	unstored.Size++
	if _, err := l.AddCosignatures(ctx, "w1", w1.key, unstored, []string{w1.cosign(t, cp)}); err == nil {
		t.Errorf("a cosignature of another checkpoint was stored")
	}
	if st, ok, _ := l.WitnessState(ctx, "w1"); ok && st.Size != 0 {
		t.Errorf("state after refused answers: %+v; want nothing cosigned", st)
	}
}

func TestRefusalAndAcknowledgement(t *testing.T) {
	l, _ := testLog(t)
	ctx := context.Background()
	fill(t, l, 3, 0)
	w := newTestWitness(t, "w1")
	if _, err := l.AcknowledgeRefusal(ctx, "w1", "uid:0"); !errors.Is(err, ErrNoRefusal) {
		t.Fatalf("ack with no refusal = %v; want ErrNoRefusal", err)
	}
	r := Refusal{Why: RefusedNotExtension, Detail: "422", WitnessSize: 7, LogSize: 5}
	got, isNew, err := l.WitnessRefused(ctx, "w1", w.key.Text, r)
	if err != nil || !isNew || got.Entry < 0 {
		t.Fatalf("WitnessRefused = %+v, %v, %v", got, isNew, err)
	}
	// The same refusal again is not a new entry.
	size, _ := l.Size(ctx)
	if again, isNew, err := l.WitnessRefused(ctx, "w1", w.key.Text, r); err != nil || isNew || again.Entry != got.Entry {
		t.Fatalf("second WitnessRefused = %+v, %v, %v; want the first", again, isNew, err)
	}
	if n, _ := l.Size(ctx); n != size {
		t.Errorf("the repeated refusal added %d entries", n-size)
	}
	st, _, err := l.WitnessState(ctx, "w1")
	if err != nil || !st.Refusal.Pending() || st.Refusal.Why != RefusedNotExtension {
		t.Fatalf("state = %+v, %v; want a pending refusal", st, err)
	}
	ent, err := l.Entry(ctx, got.Entry)
	if err != nil || ent.Kind != WitnessRefused {
		t.Fatalf("entry %d = %v, %v; want witness.refused", got.Entry, ent.Kind, err)
	}
	if v, _ := ent.Value("why"); v != RefusedNotExtension {
		t.Errorf("why = %q", v)
	}
	acked, err := l.AcknowledgeRefusal(ctx, "w1", "uid:0")
	if err != nil || acked.AckedBy != "uid:0" {
		t.Fatalf("AcknowledgeRefusal = %+v, %v", acked, err)
	}
	if st, _, _ := l.WitnessState(ctx, "w1"); st.Refusal.Pending() {
		t.Errorf("refusal still pending after the acknowledgement")
	}
	if _, err := l.AcknowledgeRefusal(ctx, "w1", "uid:0"); !errors.Is(err, ErrNoRefusal) {
		t.Errorf("second ack = %v; want ErrNoRefusal", err)
	}
	// Another refusal is new and pending again.
	r.Why, r.WitnessSize = RefusedRolledBack, 9
	if _, isNew, err := l.WitnessRefused(ctx, "w1", w.key.Text, r); err != nil || !isNew {
		t.Fatalf("a different refusal: %v, %v; want a new one", isNew, err)
	}
	if st, _, _ := l.WitnessState(ctx, "w1"); !st.Refusal.Pending() {
		t.Errorf("the new refusal is not pending")
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := l.Verify(ctx, VerifyOptions{}); err != nil {
		t.Errorf("Verify after refusals: %v (%v)", err, rep)
	}
}

// A refusal is recorded once per witness and reason until the witness
// cosigns this log again, whatever sizes it names (a clone of the log being
// cosigned elsewhere names a new one at every push), also when reasons
// alternate and after an acknowledgement; each witness counts on its own.
func TestRefusalOncePerCause(t *testing.T) {
	l, _ := testLog(t)
	ctx := context.Background()
	fill(t, l, 3, 0)
	w1, w2 := newTestWitness(t, "w1"), newTestWitness(t, "w2")
	refuse := func(w testWitness, name, why string, size int64) (Refusal, bool) {
		t.Helper()
		got, isNew, err := l.WitnessRefused(ctx, name, w.key.Text, Refusal{Why: why, Detail: fmt.Sprintf("witness at %d", size), WitnessSize: size, LogSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		return got, isNew
	}
	first, _ := refuse(w1, "w1", RefusedNotExtension, 10)
	var news int
	for i := range int64(100) {
		why := RefusedNotExtension
		if i%3 == 0 {
			why = RefusedRolledBack
		}
		got, isNew := refuse(w1, "w1", why, 11+i)
		if isNew {
			news++
		}
		if why == RefusedNotExtension && got.Entry != first.Entry {
			t.Fatalf("refusal %d names entry %d; want the first, %d", i, got.Entry, first.Entry)
		}
	}
	if news != 1 {
		t.Errorf("%d new refusals among 100 of two reasons already seen or new; want 1 (rolled-back)", news)
	}
	if _, isNew := refuse(w2, "w2", RefusedNotExtension, 10); !isNew {
		t.Errorf("another witness's refusal was not recorded")
	}
	st, _, _ := l.WitnessState(ctx, "w1")
	if !st.Refusal.Pending() || st.Error != "witness at 110" {
		t.Errorf("state = %+v; want a pending refusal and the latest answer in the error", st)
	}
	if _, err := l.AcknowledgeRefusal(ctx, "w1", "uid:0"); err != nil {
		t.Fatal(err)
	}
	// The acknowledgement does not end the episode: the witness going on
	// refusing for the same reason raises no new alarm.
	if _, isNew := refuse(w1, "w1", RefusedNotExtension, 200); isNew {
		t.Errorf("the same cause after the acknowledgement was recorded again")
	}
	if st, _, _ := l.WitnessState(ctx, "w1"); st.Refusal.Pending() {
		t.Errorf("the acknowledged refusal is pending again after a retry of the same cause")
	}
	// The witness cosigns the log again: the episode is over, and the same
	// reason later is a new cause, recorded once.
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddCosignatures(ctx, "w1", w1.key, cp, []string{w1.cosign(t, cp)}); err != nil {
		t.Fatal(err)
	}
	if _, isNew := refuse(w1, "w1", RefusedNotExtension, 300); !isNew {
		t.Errorf("the same cause after the witness cosigned again was not recorded")
	}
	if _, isNew := refuse(w1, "w1", RefusedNotExtension, 301); isNew {
		t.Errorf("the same cause twice after the witness cosigned again was recorded twice")
	}
	if st, _, _ := l.WitnessState(ctx, "w1"); !st.Refusal.Pending() {
		t.Errorf("the refusal after the witness cosigned again is not pending")
	}
	// w2 never cosigned: its cause stays recorded once.
	if _, isNew := refuse(w2, "w2", RefusedNotExtension, 11); isNew {
		t.Errorf("w2's same cause was recorded again after w1 cosigned")
	}
	es, err := l.Entries(ctx, Query{Kinds: []Kind{WitnessRefused}})
	if err != nil || len(es) != 4 {
		t.Fatalf("%d witness.refused entries, %v; want 4 (w1 twice, w2, w1 after it cosigned again)", len(es), err)
	}
}

// A config that gives a name another witness's key starts that witness
// from size 0: the size the old key cosigned says nothing of the new one.
func TestWitnessKeyChangeResetsSize(t *testing.T) {
	l, _ := testLog(t)
	ctx := context.Background()
	fill(t, l, 3, 0)
	cp, _ := l.Checkpoint(ctx)
	w1, w1b := newTestWitness(t, "w1"), newTestWitness(t, "w1")
	if _, err := l.AddCosignatures(ctx, "w1", w1.key, cp, []string{w1.cosign(t, cp)}); err != nil {
		t.Fatal(err)
	}
	if err := l.WitnessFailed(ctx, "w1", w1b.key.Text, "unreachable"); err != nil {
		t.Fatal(err)
	}
	st, _, _ := l.WitnessState(ctx, "w1")
	if st.Size != 0 || st.Key != w1b.key.Text || st.Error != "unreachable" {
		t.Errorf("state = %+v; want size 0 for the new key", st)
	}
}
