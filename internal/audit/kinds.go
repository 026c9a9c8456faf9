package audit

import "slices"

// The closed set of event kinds. Each entry says what happened and which
// fields it carries; Event.Check enforces it. No kind may carry personal
// data: no booking references, no card numbers or their HMACs, no addresses
// or host names seen in traffic, no names of patrons. Staff names are not
// recorded either; the config's SHA-256 ties an entry to the file that held
// them.
//
// Kind strings and field keys are part of the wire form: never rename one,
// only add.
const (
	// Service lifecycle.
	ServiceStart       Kind = "service.start"        // version, config_sha256, pid
	ServiceStop        Kind = "service.stop"         // reason
	ServiceUncleanStop Kind = "service.unclean-stop" // last_alive, boot: the previous run ended without a clean stop; boot says whether the PC restarted since (same|changed|unknown)

	// Configuration.
	ConfigAccepted Kind = "config.accepted" // sha256, source (start|reload)
	ConfigRejected Kind = "config.rejected" // sha256, problems (config keys and rules, never values), count

	// Keys created by carrel on this PC.
	KeyCreated Kind = "key.created" // key (audit-signing|patron-hmac), fingerprint

	// Bookings.
	BookingRetention   Kind = "booking.retention"   // deleted, from, to, cutoff
	BookingInterrupted Kind = "booking.interrupted" // count, at, reason: open bookings closed because the service stopped uncleanly (unclean-stop), the PC restarted after a clean stop (reboot), or both (unclean-reboot); a clean restart of the service closes none

	BookingPatronLookup Kind = "booking.patron-lookup" // account, uid, found: staff looked up the bookings of one patron card (an access request); never the card or its HMAC

	// Local API.
	APIRefused Kind = "api.refused" // account, uid, why (not-in-group|unknown-peer|too-many-connections|busy|not-admin), count: how many refusals of the account for that reason the entry stands for (absent: one); a flood is recorded at most once a minute

	// Misuse cases and capture (G1, G2).
	CaseAccepted  Kind = "case.accepted"  // case, mode, start, end, notice_posted_at
	CaseRejected  Kind = "case.rejected"  // case, why
	CaptureStart  Kind = "capture.start"  // case, mode, interface
	CaptureStop   Kind = "capture.stop"   // case, why, packets, drops
	CaptureError  Kind = "capture.error"  // case, why
	QuotaReached  Kind = "capture.quota"  // case, max_bytes, used_bytes
	SegmentSealed Kind = "segment.sealed" // case, name, sha256, size, records, from, to
	SegmentLost   Kind = "segment.lost"   // name, size: a segment left unfinished by a crash

	// Traffic retention and legal hold.
	TrafficRetention Kind = "traffic.retention" // deleted, bytes, from, to
	HoldPlaced       Kind = "hold.placed"       // order_sha256, segments
	HoldReleased     Kind = "hold.released"     // order_sha256, segments

	// Court-order export (G7).
	ExportStart Kind = "export.start" // order_sha256, from, to, pcs
	ExportEnd   Kind = "export.end"   // order_sha256, tagmanifest_sha256, files, bytes
	ExportFail  Kind = "export.fail"  // order_sha256, why
	// An export whose process was killed, found unfinished by `carrel
	// export clean` or the next export: outcome is removed (its unfinished
	// bundle, decrypted traffic included, was removed), signed (export.end
	// was recorded, so its bundle was signed and kept) or none (nothing
	// was left on disk).
	ExportCleaned Kind = "export.cleaned" // order_sha256, outcome

	// Compliance.
	ReviewRun Kind = "review.run" // yearly review printed: bookings, segments
	// ReportWritten: `carrel report … --out FILE` wrote a compliance report;
	// its SHA-256 lets a filed copy be shown to be the one carrel made.
	ReportWritten Kind = "report.written" // report (review|processing|breach), format, lang, sha256, bytes

	// Witnesses (c2sp.org/tlog-witness). Cosignatures themselves are not
	// entries: they are kept beside the checkpoints (witness.go).
	//
	// WitnessRefused: a witness refused to cosign because this log is not
	// an extension of what it cosigned before: why is not-extension (the
	// log was rewritten, or restarted with its key kept), rolled-back (the
	// witness cosigned more entries than the log has) or key-not-trusted
	// (the witness knows the log's origin with another key: the log was
	// started again with a new key). witness_size is the size the witness
	// holds (0 when it did not say), log_size that of the checkpoint it
	// refused. It is recorded once per witness and why until the witness
	// cosigns this log again (`carrel status` shows it until an
	// administrator acknowledges it): the sizes of later refusals of the
	// same cause are only in the witness's state and the service log.
	WitnessRefused Kind = "witness.refused" // witness, why, witness_size, log_size
	// WitnessAcknowledged: an administrator acknowledged a refusal (`carrel
	// audit witness ack NAME`); refusal is the witness.refused entry.
	WitnessAcknowledged Kind = "witness.acknowledged" // witness, why, refusal
)

type fieldSpec struct {
	typ      FieldType
	required bool
}

type kindSpec struct {
	fields map[string]fieldSpec
}

func req(t FieldType) fieldSpec { return fieldSpec{typ: t, required: true} }
func opt(t FieldType) fieldSpec { return fieldSpec{typ: t} }

var kinds = map[Kind]kindSpec{
	ServiceStart: {fields: map[string]fieldSpec{
		"version": req(TypeToken), "config_sha256": opt(TypeHash), "pid": opt(TypeInt)}},
	ServiceStop: {fields: map[string]fieldSpec{
		"reason": req(TypeToken)}},
	ServiceUncleanStop: {fields: map[string]fieldSpec{
		"last_alive": opt(TypeTime), "boot": opt(TypeToken)}},

	ConfigAccepted: {fields: map[string]fieldSpec{
		"sha256": req(TypeHash), "source": req(TypeToken)}},
	ConfigRejected: {fields: map[string]fieldSpec{
		"sha256": opt(TypeHash), "problems": req(TypeText), "count": req(TypeInt)}},

	KeyCreated: {fields: map[string]fieldSpec{
		"key": req(TypeToken), "fingerprint": opt(TypeHash)}},

	BookingRetention: {fields: map[string]fieldSpec{
		"deleted": req(TypeInt), "from": opt(TypeTime), "to": opt(TypeTime), "cutoff": req(TypeTime)}},
	BookingInterrupted: {fields: map[string]fieldSpec{
		"count": req(TypeInt), "at": req(TypeTime), "reason": opt(TypeToken)}},

	BookingPatronLookup: {fields: map[string]fieldSpec{
		"account": opt(TypeToken), "uid": opt(TypeInt), "found": req(TypeInt)}},

	APIRefused: {fields: map[string]fieldSpec{
		"account": opt(TypeToken), "uid": opt(TypeInt), "why": req(TypeToken), "count": opt(TypeInt)}},

	CaseAccepted: {fields: map[string]fieldSpec{
		"case": req(TypeToken), "mode": req(TypeToken), "start": req(TypeTime), "end": req(TypeTime),
		"notice_posted_at": req(TypeTime)}},
	CaseRejected: {fields: map[string]fieldSpec{
		"case": req(TypeToken), "why": req(TypeText)}},
	CaptureStart: {fields: map[string]fieldSpec{
		"case": req(TypeToken), "mode": req(TypeToken), "interface": opt(TypeToken)}},
	CaptureStop: {fields: map[string]fieldSpec{
		"case": req(TypeToken), "why": req(TypeToken), "packets": opt(TypeInt), "drops": opt(TypeInt)}},
	CaptureError: {fields: map[string]fieldSpec{
		"case": opt(TypeToken), "why": req(TypeText)}},
	QuotaReached: {fields: map[string]fieldSpec{
		"case": req(TypeToken), "max_bytes": req(TypeInt), "used_bytes": req(TypeInt)}},
	SegmentSealed: {fields: map[string]fieldSpec{
		"case": req(TypeToken), "name": req(TypeToken), "sha256": req(TypeHash), "size": req(TypeInt),
		"records": req(TypeInt), "from": req(TypeTime), "to": req(TypeTime)}},
	SegmentLost: {fields: map[string]fieldSpec{
		"name": req(TypeToken), "size": req(TypeInt)}},

	TrafficRetention: {fields: map[string]fieldSpec{
		"deleted": req(TypeInt), "bytes": req(TypeInt), "from": opt(TypeTime), "to": opt(TypeTime)}},
	HoldPlaced: {fields: map[string]fieldSpec{
		"order_sha256": req(TypeHash), "segments": req(TypeInt)}},
	HoldReleased: {fields: map[string]fieldSpec{
		"order_sha256": req(TypeHash), "segments": req(TypeInt)}},

	ExportStart: {fields: map[string]fieldSpec{
		"order_sha256": req(TypeHash), "from": req(TypeTime), "to": req(TypeTime), "pcs": req(TypeInt)}},
	ExportEnd: {fields: map[string]fieldSpec{
		"order_sha256": req(TypeHash), "tagmanifest_sha256": req(TypeHash), "files": req(TypeInt), "bytes": req(TypeInt)}},
	ExportFail: {fields: map[string]fieldSpec{
		"order_sha256": req(TypeHash), "why": req(TypeText)}},
	ExportCleaned: {fields: map[string]fieldSpec{
		"order_sha256": req(TypeHash), "outcome": req(TypeToken)}},

	ReviewRun: {fields: map[string]fieldSpec{
		"bookings": req(TypeInt), "segments": req(TypeInt)}},
	ReportWritten: {fields: map[string]fieldSpec{
		"report": req(TypeToken), "format": req(TypeToken), "lang": req(TypeToken), "sha256": req(TypeHash),
		"bytes": req(TypeInt)}},

	WitnessRefused: {fields: map[string]fieldSpec{
		"witness": req(TypeToken), "why": req(TypeToken), "witness_size": req(TypeInt), "log_size": req(TypeInt)}},
	WitnessAcknowledged: {fields: map[string]fieldSpec{
		"witness": req(TypeToken), "why": req(TypeToken), "refusal": req(TypeInt)}},
}

// Kinds returns every declared kind in name order, for documentation and
// `carrel audit list --kind`.
func Kinds() []Kind {
	out := make([]Kind, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
