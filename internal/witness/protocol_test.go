package witness

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/carrel-lib/carrel/internal/audit"
)

func TestRequestBody(t *testing.T) {
	var h1, h2 tlog.Hash
	h1[0], h2[31] = 1, 2
	got := string(requestBody(7, tlog.TreeProof{h1, h2}, []byte("origin\n9\nROOT\n\n— origin SIG\n")))
	want := "old 7\n" + h1.String() + "\n" + h2.String() + "\n\norigin\n9\nROOT\n\n— origin SIG\n"
	if got != want {
		t.Errorf("requestBody = %q; want %q", got, want)
	}
	if got := string(requestBody(0, nil, []byte("n\n"))); got != "old 0\n\nn\n" {
		t.Errorf("requestBody(0) = %q", got)
	}
}

func TestReadAnswer(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		kind   answerKind
		why    string
		size   int64
	}{
		{"cosigned", 200, "— w1 AAAAAAAA\n", answerCosigned, "", 0},
		{"200 garbage", 200, "<html>", answerFailed, "", 0},
		{"200 empty", 200, "", answerFailed, "", 0},
		{"conflict", 409, "42\n", answerConflict, "", 42},
		{"conflict zero", 409, "0\n", answerConflict, "", 0},
		{"conflict no newline", 409, "42", answerFailed, "", 0},
		{"conflict negative", 409, "-1\n", answerFailed, "", 0},
		{"conflict leading zero", 409, "042\n", answerFailed, "", 0},
		{"conflict huge", 409, "99999999999999999999\n", answerFailed, "", 0},
		{"bad proof", 422, "bad consistency proof\n", answerRefused, audit.RefusedNotExtension, 0},
		{"litewitness unknown log", 403, "unknown log\n", answerNotRegistered, "", 0},
		{"bad signature", 403, "invalid signature\n", answerRefused, audit.RefusedKeyNotTrusted, 0},
		{"spec unknown origin", 404, "", answerNotRegistered, "", 0},
		{"bad request", 400, "invalid input\n", answerFailed, "", 0},
		{"server error", 500, "database error\n", answerFailed, "", 0},
		{"redirect", 301, "", answerFailed, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := readAnswer(tc.status, []byte(tc.body))
			if a.kind != tc.kind || a.why != tc.why || a.size != tc.size {
				t.Errorf("readAnswer(%d, %q) = %+v; want kind %d why %q size %d", tc.status, tc.body, a, tc.kind, tc.why, tc.size)
			}
			if a.kind != answerCosigned && a.msg == "" {
				t.Errorf("readAnswer(%d, %q) says nothing", tc.status, tc.body)
			}
		})
	}
}

// A witness's words reach the status and the log quoted: no escape
// sequence of a hostile or broken witness can paint a terminal.
func TestAnswerQuoted(t *testing.T) {
	a := readAnswer(http.StatusTeapot, []byte("\x1b[2J\x1b]0;owned\x07 oops\n"))
	if strings.ContainsAny(a.msg, "\x1b\x07") {
		t.Errorf("message holds control bytes: %q", a.msg)
	}
	a = readAnswer(http.StatusInternalServerError, []byte(strings.Repeat("é", 500)))
	if len(a.msg) > 300 {
		t.Errorf("message is %d bytes long", len(a.msg))
	}
}

// FuzzReadAnswer: any answer is classified without a panic, a cosigned
// answer's lines are canonical signature lines, a conflict's size is a
// canonical non-negative number, and the message holds no control byte.
func FuzzReadAnswer(f *testing.F) {
	f.Add(200, []byte("— witness.test/w1 AAAAAAAA\n"))
	f.Add(409, []byte("12\n"))
	f.Add(403, []byte("unknown log\n"))
	f.Add(422, []byte("bad consistency proof\n"))
	f.Add(200, []byte("— a AAAAAAAA\n— b AAAAAAAB\n"))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		a := readAnswer(status, body)
		switch a.kind {
		case answerCosigned:
			if status != 200 || len(a.lines) == 0 {
				t.Fatalf("cosigned from %d with %d lines", status, len(a.lines))
			}
			for _, l := range a.lines {
				if !strings.HasPrefix(l, "— ") || !strings.HasSuffix(l, "\n") || strings.Count(l, "\n") != 1 {
					t.Fatalf("line %q", l)
				}
			}
		case answerConflict:
			if status != 409 || a.size < 0 {
				t.Fatalf("conflict from %d size %d", status, a.size)
			}
		}
		if strings.ContainsFunc(a.msg, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Fatalf("message holds a control byte: %q", a.msg)
		}
	})
}
