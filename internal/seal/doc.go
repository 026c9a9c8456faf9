// Package seal owns the traffic store: sealed segment files under
// <data_dir>/traffic/ and their index traffic.db.
//
// A Writer (the capture engine's Sink) writes each segment through age
// encryption to the head librarian's X25519 recipients, as a *.partial file
// that is fsynced, indexed and renamed when the segment is cut. The index
// records per segment its case, format, record time range, record count,
// ciphertext size and SHA-256, state (open, sealed, lost, deleted) and legal
// holds; every state change is audited through an outbox table so that a
// crash neither loses nor doubles an audit entry. The Store lists, checks,
// holds, releases and purges segments, and enforces the byte quota.
//
// What it must not touch (G3, G4):
//   - no booking notion: seal never imports internal/booking, internal/capture
//     or internal/export, and traffic.db holds no booking reference;
//   - no decryption: nothing in this package can read back a segment's
//     plaintext. Only public recipients are used here; LoadIdentities exists
//     for the exporter and never feeds a decrypting code path in seal.
package seal
