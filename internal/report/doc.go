// Package report makes carrel's compliance documents from the live PC: the
// yearly review (retention runs and their gaps, cases, capture, exports,
// holds, refusals, the audit log's state, and findings that need action,
// each with the rule behind it), the record of processing (GDPR Art. 30)
// and the facts a breach notification needs (Art. 33). Each renders as
// text, as a printable A4 HTML page and as JSON, in Danish or English.
//
// Everything a report says is derived from the config in force, the audit
// log and summaries of the two stores; nothing is typed by hand. It owns no
// file: it opens the audit log read-only, and the cmd/carrel command
// records a written report's SHA-256 through the audit log.
//
// What it must not touch (G3): it reads the booking register and the
// traffic store only through booking.ReadSummary and seal.ReadSummary —
// counts, sizes and time ranges — never a booking reference, a card HMAC, a
// segment or a traffic record, and it never puts booking rows beside
// traffic rows. A test over its source (internal/layering_test.go) allows
// exactly those functions and their result types.
package report
