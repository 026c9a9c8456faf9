// Package export makes and checks the court-order evidence bundle (G7): a
// BagIt 1.0 bag (RFC 8493) holding, for one court order, the bookings of
// the PCs asked for that overlap a time window, the sealed traffic segments
// that overlap it exactly as stored together with their decrypted content
// restricted to the window, the audit entries that concern the window and
// the cases involved with inclusion proofs against one signed checkpoint,
// the config in force, and a chain-of-custody record.
//
// It is the only package that reads both the booking register and traffic
// (G3); a test over the package graph allows it and nobody else. In the
// data folder it owns only the markers of exports under way
// (export-*.pending, pending.go); it opens bookings.db read-only, the
// traffic store to read segments and place and lift legal holds, and the
// audit log to record export.start, export.end, export.fail and
// export.cleaned. It decrypts segments with the head librarian's identity,
// which it never stores.
//
// The bundle is signed (signature.go): the export.end entry, recording the
// tag manifest's SHA-256, proved against a checkpoint signed with the PC's
// audit key. An export interrupted at any point leaves either no bundle or
// one that Verify calls unfinished; Clean finishes what a killed export
// left. Verify opens nothing in a bag but folders and regular files
// (bagfs.go), and names from a bag are quoted in every message.
//
// What the bundle holds, and how partial overlaps are treated:
//
//   - The window is [from, to): a moment at `to` is outside.
//   - A booking overlapping the window only partly is included whole, with
//     its recorded start and end: a booking is the unit that says who could
//     have used the PC, and cutting it would misstate the register.
//   - A sealed segment overlapping the window is included whole, as stored:
//     ciphertext cannot be cut, and its SHA-256 must match the audit log.
//     Its decrypted content is restricted to the window: a DNS, TLS or HTTP
//     record when its time is in the window, a flow record when any part of
//     it (first..last) is, a packet when its timestamp is. Lines and packets
//     are copied, never rewritten.
//   - A window that overlaps a case only partly yields the traffic of the
//     overlap; there is no traffic outside a case, by design (G2). A window
//     with no case yields an honest bundle with bookings and no traffic, and
//     bag-info.txt says so.
//
// It must not write bookings, traffic or config, keep a copy of the
// identity, or put the order reference or any personal data into the audit
// log (only the order's SHA-256).
package export
