// Package capture reads packets from a network interface (AF_PACKET
// TPACKET_V3 on Linux, Npcap on Windows) or from pcap/pcapng files and turns
// them into traffic records: in metadata mode flows, DNS questions, TLS SNI
// (over TCP, and over QUIC from client Initial packets, see quic.go) and
// HTTP Host as JSON Lines; in packets mode pcapng blocks cut to the
// case's snap length. It hands every encoded record to a Sink.
//
// It owns the capture handle, the flow table, the protocol extractors and
// the record wire form (Record, AppendJSON, DecodeJSON).
//
// It must not touch bookings, sealing, audit or export: it imports none of
// internal/booking, internal/seal, internal/audit, internal/export (G3). It
// never decides whether capture is allowed; the caller does, and calls
// Engine.Start only then. Nothing is opened before Start (G1).
package capture
