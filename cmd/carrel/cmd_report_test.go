package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"

	"github.com/carrel-lib/carrel/internal/audit"
)

// TestReportOut: --out writes a new file and the audit log records its
// SHA-256; an existing file or a symlink planted at the name is refused
// and left as it was.
func TestReportOut(t *testing.T) {
	cfg, data, l := auditFixture(t)
	l.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "review.html")
	code, stdout, stderr := runCLI(t, "", "report", "review", "--config", cfg, "--format", "html", "--lang", "en", "--out", out)
	if code != 0 || stdout != "" {
		t.Fatalf("report review --out = %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if !strings.Contains(string(b), "<!DOCTYPE html>") || !strings.Contains(stderr, hex.EncodeToString(sum[:])) {
		t.Fatalf("file is not the HTML review, or stderr %q does not give its SHA-256", stderr)
	}
	ro, err := audit.Open(filepath.Join(data, audit.DBFile), audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	es, err := ro.Entries(context.Background(), audit.Query{Kinds: []audit.Kind{audit.ReportWritten}})
	if err != nil || len(es) != 1 {
		t.Fatalf("report.written entries = %v, %v; want 1", es, err)
	}
	for k, want := range map[string]string{"report": "review", "format": "html", "lang": "en", "sha256": hex.EncodeToString(sum[:])} {
		if got, _ := es[0].Value(k); got != want {
			t.Errorf("report.written %s = %q; want %q", k, got, want)
		}
	}

	// A second report to the same name is refused; the first stays.
	code, _, stderr = runCLI(t, "", "report", "review", "--config", cfg, "--out", out)
	if code != exitFailure || !strings.Contains(stderr, "already exists") {
		t.Errorf("second --out to the same file = %d, %q; want 1, already exists", code, stderr)
	}
	if again, _ := os.ReadFile(out); string(again) != string(b) {
		t.Error("the existing report was changed")
	}
	// A symlink planted where the report goes is not followed.
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	link := filepath.Join(dir, "link.txt")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "", "report", "breach", "--config", cfg, "--out", link)
	if v, _ := os.ReadFile(victim); code != exitFailure || string(v) != "keep" {
		t.Errorf("--out onto a symlink = %d, %q; victim now %q; want refused and untouched", code, stderr, v)
	}
	if es, _ := ro.Entries(context.Background(), audit.Query{Kinds: []audit.Kind{audit.ReportWritten}}); len(es) != 1 {
		t.Errorf("refused writes were recorded: %d report.written entries", len(es))
	}
}

func TestReportFlags(t *testing.T) {
	cfg, _, _ := auditFixture(t)
	defer func(f func() time.Time) { timeNow = f }(timeNow)
	now := time.Now().Add(time.Hour).UTC().Truncate(time.Second) // after the fixture's entries
	timeNow = func() time.Time { return now }
	from := now.AddDate(0, -1, 0)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"report"}, exitUsage, "review, processing, breach"},
		{[]string{"report", "yearly"}, exitUsage, "review, processing, breach"},
		{[]string{"report", "review", "--config", cfg, "--lang", "de"}, exitUsage, "--lang"},
		{[]string{"report", "review", "--config", cfg, "--format", "pdf"}, exitUsage, "--format"},
		{[]string{"report", "review", "--config", cfg, "--from", "2026-05-01", "--to", "2026-04-01"}, exitUsage, "before"},
		{[]string{"report", "processing", "--config", cfg, "--since", "2026-01-01"}, exitUsage, ""},
		{[]string{"report", "review", "--config", cfg, "--trusted", filepath.Join(t.TempDir(), "none")}, exitFailure, "trusted checkpoint"},
		{[]string{"report", "review", "--config", cfg, "--witness-key", "w1+0000"}, exitUsage, "--witness-key"},
		{[]string{"report", "breach", "--config", cfg, "--quorum", "1"}, exitUsage, "more than the 0 witnesses in the config"},
		{[]string{"report", "processing", "--config", cfg, "--witness-key", "w1+0000"}, exitUsage, ""},
	} {
		code, _, stderr := runCLI(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("carrel %v = %d, %q; want %d and %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
	// JSON on standard output, with the period the flags gave.
	code, stdout, stderr := runCLI(t, "", "report", "review", "--config", cfg, "--format", "json", "--from", from.Format(time.RFC3339))
	var got struct {
		Meta struct {
			PC     string
			Period struct{ From, To time.Time }
		}
		Config struct{ Rejected []any }
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &got) != nil {
		t.Fatalf("report review --format json = %d, %q, %q", code, stdout, stderr)
	}
	if got.Meta.PC != "pc-e2e" || !got.Meta.Period.To.Equal(now) || !got.Meta.Period.From.Equal(from) || len(got.Config.Rejected) != 1 {
		t.Errorf("review JSON = %+v; want pc-e2e, the period of the flags, one refused config", got)
	}

	// A witness key given off the PC is the one the review judges with.
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := torchwood.NewCosignatureSigner("witness.example/w1", priv)
	if err != nil {
		t.Fatal(err)
	}
	key := signer.Verifier().String()
	code, stdout, stderr = runCLI(t, "", "report", "review", "--config", cfg, "--format", "json", "--witness-key", key)
	var withKey struct {
		Audit struct {
			WitnessKeysGiven bool `json:"witness_keys_given"`
			Witnesses        []struct{ Name, Key string }
		}
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &withKey) != nil {
		t.Fatalf("report review --witness-key = %d, %q, %q", code, stdout, stderr)
	}
	if a := withKey.Audit; !a.WitnessKeysGiven || len(a.Witnesses) != 1 || a.Witnesses[0].Key != key || a.Witnesses[0].Name != "witness.example/w1" {
		t.Errorf("review with --witness-key: %+v; want the key given, named by its name", a)
	}
}
