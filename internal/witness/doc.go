// Package witness pushes the audit log's checkpoints to transparency-log
// witnesses (c2sp.org/tlog-witness) and keeps what they answer.
//
// It owns the witness protocol on carrel's side: for each configured
// witness, a worker sends the latest checkpoint with a consistency proof
// from the size that witness last cosigned (POST add-checkpoint), stores
// the cosignature it returns beside the checkpoint, resends from the size
// the witness names when it answers 409, and retries with backoff while
// the witness cannot be reached. A witness that refuses because the log is
// not an extension of what it cosigned (422 to the proof, 409 naming more
// entries than the log has, 403 for a key it does not trust) is a loud
// event: a witness.refused audit entry, an error in the service log, and a
// refusal `carrel status` shows until an administrator acknowledges it.
//
// Under the hardened systemd unit the service opens no IP socket at all:
// requests go through the relay (relay.go), a separate, narrowly confined
// process that reaches only the witnesses' addresses and reads no file of
// carrel's. On other platforms the worker dials directly.
//
// It sits beside package audit and below package daemon: it imports audit
// (the log it pushes and the tables it fills) and nothing that holds
// bookings, traffic, cases or the config; the daemon hands it the
// witnesses from the config. Pushing never blocks bookings or capture: the
// workers run on their own goroutines and touch nothing but the audit log,
// whose writes are short transactions.
package witness
