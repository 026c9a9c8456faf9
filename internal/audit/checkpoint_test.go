package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func goldenCheckpoint() Checkpoint {
	return Checkpoint{Origin: testOrigin, Size: 42, Root: tlog.Hash(sha256.Sum256([]byte("root")))}
}

// goldenNote pins the wire form of a signed checkpoint (C2SP
// tlog-checkpoint). Checkpoints kept off the PC must verify forever: never
// update this, only add a new form beside it. The key hash and signature
// were cross-checked with an independent Ed25519 implementation (Python
// cryptography) over the same seed and text.
const goldenNote = "carrel/pc-01\n" +
	"42\n" +
	"SBNJTRN+FjG7owHVrKtue7eqdM4RhdRWVl71HXN2d7I=\n" +
	"\n" +
	"— carrel/pc-01 qyzWDRJwMRUhDSdijdtCWBkWZos85UQKfK4YyW22kuHfDIDUo41xlkmEZvJAekwrgWWDKmkO8vyOSvLaHWCwqGqAOg4=\n"

const goldenVerifier = "carrel/pc-01+ab2cd60d+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c"

func TestCheckpointGolden(t *testing.T) {
	s, vkey := fixedKey(t, testOrigin, 1)
	if vkey != goldenVerifier {
		t.Errorf("verifier key = %q; want %q", vkey, goldenVerifier)
	}
	c := goldenCheckpoint()
	if got, want := string(c.Body()), strings.Split(goldenNote, "\n\n")[0]+"\n"; got != want {
		t.Errorf("Body() = %q; want %q", got, want)
	}
	signed, err := c.sign(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(signed.Note) != goldenNote {
		t.Fatalf("sign() =\n%s\nwant\n%s", signed.Note, goldenNote)
	}
	back, err := OpenCheckpoint([]byte(goldenNote), goldenVerifier)
	if err != nil {
		t.Fatalf("OpenCheckpoint(golden) = %v", err)
	}
	if back.Origin != c.Origin || back.Size != c.Size || back.Root != c.Root || string(back.Note) != goldenNote {
		t.Errorf("OpenCheckpoint(golden) = %+v; want %+v", back, c)
	}
}

func TestOpenCheckpointRejects(t *testing.T) {
	s, vkey := fixedKey(t, testOrigin, 1)
	_, otherKey := fixedKey(t, testOrigin, 2)
	otherSigner, _ := fixedKey(t, "carrel/pc-02", 3)
	signBody := func(body string, signers ...note.Signer) string {
		msg, err := note.Sign(&note.Note{Text: body}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		return string(msg)
	}
	body := string(goldenCheckpoint().Body())
	good := signBody(body, s)
	sigLine := good[strings.LastIndex(good, "\n\n")+2:]
	// The last base64 character before "=" carries two padding bits; setting
	// one leaves the signature bytes the same, but not the note's.
	b64 := strings.TrimSuffix(sigLine[strings.LastIndex(sigLine, " ")+1:], "\n")
	raw, _ := base64.StdEncoding.DecodeString(b64)
	enc := base64.StdEncoding.EncodeToString(raw)
	last := strings.IndexByte(base64Alphabet, enc[len(enc)-2])
	loose := enc[:len(enc)-2] + string(base64Alphabet[last|1]) + "="

	tests := []struct {
		name, msg, want string
		keys            []string
	}{
		{"wrong key", good, "not signed by a trusted key", []string{otherKey}},
		{"body changed", strings.Replace(good, "42\n", "43\n", 1), "invalid", nil},
		{"unsigned", body, "no signature block", nil},
		{"signature repeated", good + sigLine, "repeated", nil},
		{"signature padding bits", strings.Replace(good, b64, loose, 1), "canonical base64", nil},
		{"extension line", signBody(body+"extra\n", s), "want 3", nil},
		{"size leading zero", signBody(strings.Replace(body, "42", "042", 1), s), "tree size", nil},
		{"root not base64", signBody(strings.Replace(body, "SBNJ", "SBN*", 1), s), "root hash", nil},
		{"origin with space", signBody("carrel pc\n1\n"+goldenCheckpoint().Root.String()+"\n", s), "spaces", nil},
		{"signed by key of other name", signBody(body, s, otherSigner), "", nil},
		{"only other name", signBody(body, otherSigner), "not signed by a trusted key", []string{vkey, otherKeyOf(t, otherSigner)}},
		{"too long", good + strings.Repeat("x", maxNoteBytes), "longer than", nil},
		{"bad verifier key", good, "verifier key", []string{"nonsense"}},
		{"no verifier key", good, "no verifier key", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := tt.keys
			if keys == nil {
				keys = []string{vkey}
			}
			_, err := OpenCheckpoint([]byte(tt.msg), keys...)
			if tt.want == "" {
				if err != nil {
					t.Errorf("OpenCheckpoint = %v; want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenCheckpoint(%q) = %v; want an error containing %q", tt.msg, err, tt.want)
			}
		})
	}
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// otherKeyOf returns a verifier key named like s but of a different key, so
// that a note signed by s is checked against a key of that name that did
// not sign it.
func otherKeyOf(t *testing.T, s note.Signer) string {
	_, k := fixedKey(t, s.Name(), 9)
	return k
}

func TestCheckpointSignRefusesOtherName(t *testing.T) {
	s, _ := fixedKey(t, "carrel/pc-02", 1)
	if _, err := goldenCheckpoint().sign(s); err == nil || !strings.Contains(err.Error(), "named") {
		t.Errorf("sign with a key named otherwise = %v; want an error", err)
	}
}

func TestParseStoredCheckpoint(t *testing.T) {
	c, err := parseStoredCheckpoint([]byte(goldenNote))
	if err != nil || c.Size != 42 || !bytes.Equal(c.Note, []byte(goldenNote)) {
		t.Errorf("parseStoredCheckpoint(golden) = %+v, %v", c, err)
	}
	if _, err := parseStoredCheckpoint([]byte("carrel/pc-01\n42\n")); err == nil {
		t.Errorf("parseStoredCheckpoint(unsigned) = nil error; want one")
	}
}

// TestQuoteName: names read from notes and audit.db reach a terminal only
// quoted when they hold anything it could act on.
func TestQuoteName(t *testing.T) {
	for in, want := range map[string]string{
		"carrel/pc-01":      "carrel/pc-01",
		"pc-ø":              "pc-ø",
		"esc\x1b[2J":        `"esc\x1b[2J"`,
		"cr\rlf\n":          `"cr\rlf\n"`,
		"bad\xff":           `"bad\xff"`,
		"rtl\u202eoverride": `"rtl\u202eoverride"`,
		"":                  `""`,
	} {
		if got := quoteName(in); got != want {
			t.Errorf("quoteName(%q) = %s; want %s", in, got, want)
		}
	}
}
