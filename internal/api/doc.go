// Package api is carrel's local API: HTTP and JSON over a Unix socket on
// Linux and a named pipe on Windows, used by the booking client on the PC
// and by `carrel booking` and `carrel status`.
//
// It owns the wire types, request decoding and validation limits, and who
// may call: root / Administrators, the service's own account, and members of
// the configured booking-client group. Access is checked twice — by the
// socket's file mode or the pipe's ACL, and again per request from the
// caller's kernel-reported identity — and every refusal is reported so the
// daemon can audit it.
//
// It knows bookings only through the Bookings interface and must not
// import anything about traffic.
package api
