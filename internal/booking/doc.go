// Package booking keeps the register of when each PC was booked: the only
// thing carrel records about patrons by default (G1).
//
// It owns bookings.db, its own SQLite file, holding per booking only the PC
// id, the booking client's reference, start, planned end, end and how the
// booking ended — and, when the client passes a patron card number, an
// HMAC-SHA256 of it under a per-install secret, never the number itself.
// It also keeps the documentation of its own retention runs (G6).
//
// It must never import, hold or learn anything about network traffic
// (G3): no capture, seal or export import, no addresses, no host names. A
// test over the package graph enforces this.
package booking
