// Package audit owns carrel's tamper-evident audit log: audit.db (its own
// SQLite file, WAL, synchronous=FULL) and the log's Ed25519 signing key,
// audit.key, both in the data folder.
//
// Every entry (an Event plus a sequence number and a time) is a leaf of a
// Merkle tree (golang.org/x/mod/sumdb/tlog, RFC 6962). Its canonical
// encoding (Entry) is the leaf; the tree's stored hashes are written in the
// same SQLite transaction as the entry, and Record returns only after that
// transaction is durable. The log signs C2SP checkpoints (Checkpoint) with
// golang.org/x/mod/sumdb/note when it is created, at mode changes, exports,
// shutdown, and (the service, on Grown) within seconds of any new entry.
// Every entry records the size of the latest checkpoint before it, which
// puts the list of signed checkpoints inside the tree. Verify recomputes
// every leaf and the whole tree from the stored fields, checks every
// checkpoint against it and against what the entries recorded, and fails
// when entries are covered by no signed checkpoint; VerifyInclusion and
// VerifyConsistency check proofs with nothing but the proof, the entry,
// signed checkpoints and a verifier key, for the export bundle's verifier.
//
// Whoever is administrator on the PC can rewrite audit.db and re-sign it
// with audit.key. What stops that is a checkpoint kept off the PC: the head
// librarian runs `carrel audit checkpoint > file` now and then, keeps the
// file and the verifier key (`carrel audit key`) elsewhere, and
// `carrel audit verify --trusted file --verifier KEY` proves the current log
// extends it. Witnesses (c2sp.org/tlog-witness) do the same without anyone
// copying a file: the service pushes each checkpoint to them (package
// witness), and they cosign it only when the log extends what they
// cosigned before. witness.go keeps their cosignatures beside the
// checkpoints and their refusals; Verify checks every stored cosignature
// with filippo.io/torchwood's cosignature verifier (cosign.go).
//
// Entries never carry personal data (kinds.go says what each kind holds).
//
// # Recording from another database: the outbox pattern
//
// Bookings and traffic live in their own files (bookings.db, traffic.db),
// so their changes cannot share a transaction with audit.db. To record a
// change neither lost nor twice, a component:
//
//  1. writes its change and an outbox row (the Event, with a unique Once key
//     such as "segment.sealed:<segment name>") in ONE transaction of its
//     own database;
//  2. calls Record with Event.Once set to that key;
//  3. deletes the outbox row once Record returned.
//
// After a crash it replays every outbox row (steps 2 and 3). A Record that
// had committed before the crash returns the first entry's sequence number
// and adds nothing, because Once is unique in audit.db. Once is not part of
// the hashed entry. Changes to tables inside audit.db itself use Update,
// which records and changes in one transaction.
//
// # What this package must not touch
//
// It imports no other carrel package but internal/sqlitedb (which opens
// SQLite files) and internal/keyfile (which writes its key whole), neither
// of which imports any: it holds no booking, traffic or case
// logic, reads no config and opens no file but audit.db and the key. Other
// packages depend on it through Recorder, not the other way round.
package audit
