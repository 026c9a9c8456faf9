package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	"filippo.io/torchwood"
)

// witnessKey returns a fresh witness verifier key named name, made by
// torchwood's cosignature signer as litewitness makes its own.
func witnessKey(t *testing.T, name string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := torchwood.NewCosignatureSigner(name, priv)
	if err != nil {
		t.Fatal(err)
	}
	return s.Verifier().String()
}

func TestWitnessRules(t *testing.T) {
	k1, k2 := witnessKey(t, "witness.example/w1"), witnessKey(t, "w2")
	w := func(name, url, key string) string {
		return fmt.Sprintf("{name = %q, url = %q, key = %q}", name, url, key)
	}
	list := func(items ...string) string { return "[audit]\nwitnesses = [" + strings.Join(items, ", ") + "]\n" }
	good := w("w1", "https://witness.example.dk", k1)
	tests := []struct {
		name, extra, wantKey string
	}{
		{"one ok", list(good), ""},
		{"two quorum 2 ok", list(good, w("w2", "https://w2.example/sub/path", k2)) + "witness_quorum = 2", ""},
		{"table array ok", "[[audit.witnesses]]\nname = \"w1\"\nurl = \"https://witness.example.dk\"\nkey = \"" + k1 + "\"\n", ""},
		{"loopback http ok", list(w("w1", "http://127.0.0.1:7380", k1)), ""},
		{"localhost http ok", list(w("w1", "http://localhost:7380", k1)), ""},
		{"ipv6 loopback ok", list(w("w1", "http://[::1]:7380", k1)), ""},
		{"http elsewhere", list(w("w1", "http://witness.example.dk", k1)), "audit.witnesses[0].url"},
		{"http lan", list(w("w1", "http://10.0.0.5:7380", k1)), "audit.witnesses[0].url"},
		{"ftp", list(w("w1", "ftp://witness.example.dk", k1)), "audit.witnesses[0].url"},
		{"no scheme", list(w("w1", "witness.example.dk", k1)), "audit.witnesses[0].url"},
		{"credentials", list(w("w1", "https://u:p@witness.example.dk", k1)), "audit.witnesses[0].url"},
		{"query", list(w("w1", "https://witness.example.dk/?a=b", k1)), "audit.witnesses[0].url"},
		{"bad port", list(w("w1", "https://witness.example.dk:99999", k1)), "audit.witnesses[0].url"},
		{"port zero", list(w("w1", "https://witness.example.dk:0", k1)), "audit.witnesses[0].url"},
		{"url missing", "[audit]\nwitnesses = [{name = \"w1\", key = \"" + k1 + "\"}]\n", "audit.witnesses[0].url"},
		{"key missing", "[audit]\nwitnesses = [{name = \"w1\", url = \"https://w\"}]\n", "audit.witnesses[0].key"},
		{"name missing", "[audit]\nwitnesses = [{url = \"https://w\", key = \"" + k1 + "\"}]\n", "audit.witnesses[0].name"},
		{"name bad", list(w("w 1", "https://w", k1)), "audit.witnesses[0].name"},
		{"name twice", list(good, w("w1", "https://w2", k2)), "audit.witnesses[1].name"},
		{"key twice", list(good, w("w2", "https://w2", k1)), "audit.witnesses[1].key"},
		{"key garbage", list(w("w1", "https://w", "w1+00000000+AAAA")), "audit.witnesses[0].key"},
		{"key of a log", list(w("w1", "https://w", "carrel/pc-01+2c6b0ea2+AXzVHvxrGnZnnZa0ceUXPrwzwUyA6UMm7P1kx4yTtBTx")), "audit.witnesses[0].key"},
		{"unknown key in item", "[audit]\nwitnesses = [{name = \"w1\", url = \"https://w\", key = \"" + k1 + "\", colour = \"red\"}]\n", "audit.witnesses"},
		{"not a list", "[audit]\nwitnesses = \"w1\"\n", "audit.witnesses"},
		{"list of strings", "[audit]\nwitnesses = [\"w1\"]\n", "audit.witnesses"},
		{"item value not a string", "[audit]\nwitnesses = [{name = 1}]\n", "audit.witnesses"},
		{"too many", list(strings.Split(strings.Repeat(good+"|", 17), "|")[:17]...), "audit.witnesses"},
		{"quorum above count", list(good) + "witness_quorum = 2", "audit.witness_quorum"},
		{"quorum zero", list(good) + "witness_quorum = 0", "audit.witness_quorum"},
		{"quorum without witnesses ok", "[audit]\nwitness_quorum = 1\n", ""},
		{"origin prefix ok", "[audit]\norigin_prefix = \"bibliotek.example.dk/carrel\"\n", ""},
		{"origin prefix space", "[audit]\norigin_prefix = \"my library\"\n", "audit.origin_prefix"},
		{"origin prefix plus", "[audit]\norigin_prefix = \"a+b\"\n", "audit.origin_prefix"},
		{"origin prefix slash", "[audit]\norigin_prefix = \"example.dk/\"\n", "audit.origin_prefix"},
		{"origin prefix control", "[audit]\norigin_prefix = \"a\\u001bb\"\n", "audit.origin_prefix"},
		{"origin prefix long", "[audit]\norigin_prefix = \"" + strings.Repeat("a", 191) + "\"\n", "audit.origin_prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(base + tt.extra))
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Parse() = %v; want nil", err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Parse() = %v; want Problems naming %q", err, tt.wantKey)
			}
			for _, p := range ps {
				if p.Key == tt.wantKey {
					return
				}
			}
			t.Errorf("Parse() problems = %v; want one for key %q (config %+v)", ps, tt.wantKey, c.Audit)
		})
	}
}

func TestWitnessesDecoded(t *testing.T) {
	k1 := witnessKey(t, "w1")
	c, err := Parse([]byte(base + "[audit]\norigin_prefix = \"bib.example.dk/carrel\"\nwitnesses = [{name = \"w1\", url = \"https://w1.example\", key = \"" + k1 + "\"}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Witness{{Name: "w1", URL: "https://w1.example", Key: k1}}
	if len(c.Audit.Witnesses) != 1 || c.Audit.Witnesses[0] != want[0] || c.Audit.WitnessQuorum != 1 {
		t.Errorf("Audit = %+v; want %+v with quorum 1", c.Audit, want)
	}
	if got := c.LogOrigin(); got != "bib.example.dk/carrel/pc-01" {
		t.Errorf("LogOrigin() = %q", got)
	}
	c.Audit.OriginPrefix = ""
	if got := c.LogOrigin(); got != "carrel/pc-01" {
		t.Errorf("LogOrigin() without a prefix = %q; want the origin logs had before (carrel/pc-01)", got)
	}
}
