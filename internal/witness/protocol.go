package witness

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/carrel-lib/carrel/internal/audit"
)

// The add-checkpoint request (c2sp.org/tlog-witness) is
//
//	old <size the witness last cosigned, 0 for none>\n
//	<consistency proof hash, base64>\n     one line each, none when old is 0
//	\n
//	<the signed checkpoint>
//
// and the witness answers 200 with its cosignature lines, 409 with the
// size it last cosigned (text/x.tlog.size), 403 when no signature verifies
// with a key it trusts for the origin, 404 for an origin it does not know,
// 422 when the proof does not show the checkpoint extends what it
// cosigned, and 400 for a request it cannot read.

// requestBody builds an add-checkpoint request.
func requestBody(old int64, proof tlog.TreeProof, note []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(h.String())
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(note)
	return b.Bytes()
}

// maxAnswer bounds what is read of a witness's answer: a cosignature line
// is about 130 bytes.
const maxAnswer = 64 << 10

// answerKind is what a witness's answer means for carrel.
type answerKind int

const (
	answerCosigned      answerKind = iota // 200 with cosignature lines
	answerConflict                        // 409: resend from size
	answerRefused                         // the log is not an extension of what it cosigned
	answerNotRegistered                   // the witness does not know this log
	answerFailed                          // anything else: retried later
)

// answer is a witness's answer, read.
type answer struct {
	kind  answerKind
	lines []string // answerCosigned
	size  int64    // answerConflict: the size the witness last cosigned
	why   string   // answerRefused: audit.Refused*
	msg   string   // for people: what the witness said, quoted
}

// readAnswer reads the witness's answer to a request made from old.
func readAnswer(status int, body []byte) answer {
	said := quoteBody(body)
	switch status {
	case http.StatusOK:
		lines, err := audit.ParseCosignatures(body)
		if err != nil {
			return answer{kind: answerFailed, msg: fmt.Sprintf("answered 200 without cosignature lines (%v)", err)}
		}
		return answer{kind: answerCosigned, lines: lines}
	case http.StatusConflict:
		n, err := parseSize(body)
		if err != nil {
			return answer{kind: answerFailed, msg: fmt.Sprintf("answered 409 without a tree size (%s)", said)}
		}
		return answer{kind: answerConflict, size: n, msg: fmt.Sprintf("answered 409: it last cosigned size %d", n)}
	case http.StatusUnprocessableEntity:
		return answer{kind: answerRefused, why: audit.RefusedNotExtension,
			msg: fmt.Sprintf("answered 422 (%s): the log is not an extension of the tree it cosigned", said)}
	case http.StatusForbidden:
		// litewitness answers 403 "unknown log" for an origin it does not
		// know, where the spec says 404.
		if strings.TrimSpace(string(body)) == "unknown log" {
			return answer{kind: answerNotRegistered, msg: fmt.Sprintf("answered 403 (%s)", said)}
		}
		return answer{kind: answerRefused, why: audit.RefusedKeyNotTrusted,
			msg: fmt.Sprintf("answered 403 (%s): it knows this log's origin with another key", said)}
	case http.StatusNotFound:
		return answer{kind: answerNotRegistered, msg: fmt.Sprintf("answered 404 (%s)", said)}
	default:
		return answer{kind: answerFailed, msg: fmt.Sprintf("answered %d %s (%s)", status, http.StatusText(status), said)}
	}
}

// parseSize reads a 409 answer's body: a tree size and a newline.
func parseSize(body []byte) (int64, error) {
	s, ok := strings.CutSuffix(string(body), "\n")
	if !ok {
		return 0, fmt.Errorf("no newline")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%q is not a tree size", s)
	}
	return n, nil
}

// quoteBody makes a witness's answer fit for a log line and the status:
// short, one line, quoted so that no byte of it reaches a terminal raw.
func quoteBody(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	if s == "" {
		return "no text"
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == '"' }) < 0 {
		return `"` + s + `"`
	}
	return strconv.Quote(s)
}
