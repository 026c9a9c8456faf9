package api

import (
	"time"
)

// Wire types. Field names are part of the API that booking clients are
// written against: add fields, never rename or remove one.

// StartRequest is the body of POST /v1/bookings/start.
type StartRequest struct {
	Ref        string     `json:"ref"`
	Patron     string     `json:"patron,omitempty"`
	PlannedEnd *time.Time `json:"planned_end,omitempty"`
}

// EndRequest is the body of POST /v1/bookings/end.
type EndRequest struct {
	Ref string `json:"ref"`
}

// PatronRequest is the body of POST /v1/bookings/patron: find the bookings
// made with a card (root/Administrators only). The card travels in the body,
// never in a URL, so that no request log can hold it.
type PatronRequest struct {
	Patron string `json:"patron"`
}

// Booking is one booking as the API shows it. The patron HMAC never leaves
// the service; HasPatron says whether one is stored.
type Booking struct {
	PC         string     `json:"pc"`
	Ref        string     `json:"ref"`
	Start      time.Time  `json:"start"`
	PlannedEnd *time.Time `json:"planned_end,omitempty"`
	End        *time.Time `json:"end,omitempty"`
	Ended      string     `json:"ended,omitempty"` // "ended" or "interrupted"; absent while open
	HasPatron  bool       `json:"has_patron"`
}

// Error is the body of every non-2xx response.
type Error struct {
	Error string `json:"error"`
}

// Status is the body of GET /v1/status: what `carrel status` prints.
type Status struct {
	Version      string    `json:"version"`
	PC           string    `json:"pc"`
	DataDir      string    `json:"data_dir"`
	Config       string    `json:"config"`
	ConfigSHA256 string    `json:"config_sha256"`
	Started      time.Time `json:"started"`
	// ConfigRejected is set while the file on disk is invalid and an
	// earlier config is in force; it holds the problems, one per line.
	ConfigRejected string `json:"config_rejected,omitempty"`

	Mode       string `json:"mode"`        // "bookings-only" or "capturing"
	ModeReason string `json:"mode_reason"` // why: no case, which case, or why a case is refused

	Bookings BookingStats `json:"bookings"`
	// DiskFull is set while bookings are refused because the data folder's
	// file system is full; it clears with the next booking stored.
	DiskFull  *DiskFull `json:"disk_full,omitempty"`
	Retention string    `json:"retention"`
	NextPurge time.Time `json:"next_purge"`

	Capture *CaptureStatus `json:"capture,omitempty"`

	Audit    AuditStatus `json:"audit"`
	Warnings []string    `json:"warnings,omitempty"`
}

// BookingStats counts the register.
type BookingStats struct {
	Count  int        `json:"count"`
	Open   int        `json:"open"`
	Oldest *time.Time `json:"oldest,omitempty"`
}

// DiskFull says since when, and how many, booking changes were refused for
// want of space.
type DiskFull struct {
	Since   time.Time `json:"since"`
	Refused int       `json:"refused"`
}

// AuditStatus summarises the audit log.
type AuditStatus struct {
	// Origin is the log's name in its checkpoints and at its witnesses.
	Origin  string `json:"origin,omitempty"`
	Entries int64  `json:"entries"`
	// Checkpointed is the tree size of the latest signed checkpoint: the
	// entries a copied checkpoint can vouch for.
	Checkpointed int64 `json:"checkpointed"`
	// Witnesses says what each witness in audit.witnesses last did, and
	// shows a refusal not yet acknowledged even of a witness since removed
	// from the config.
	Witnesses []WitnessStatus `json:"witnesses,omitempty"`
	// Witnessed is the size of the latest checkpoint that WitnessQuorum
	// witnesses cosigned (0: none yet).
	Witnessed     int64 `json:"witnessed"`
	WitnessQuorum int   `json:"witness_quorum,omitempty"`
}

// WitnessStatus is one witness's part in `carrel status`.
type WitnessStatus struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"` // empty for a witness no longer configured
	// Cosigned is the tree size it last cosigned, at CosignedAt.
	Cosigned   int64      `json:"cosigned"`
	CosignedAt *time.Time `json:"cosigned_at,omitempty"`
	// Error is why the last push failed; empty after a success.
	Error   string     `json:"error,omitempty"`
	ErrorAt *time.Time `json:"error_at,omitempty"`
	// Refusal is the latest refusal because the log is not an extension
	// of what the witness cosigned.
	Refusal *WitnessRefusal `json:"refusal,omitempty"`
}

// WitnessRefusal is a witness's refusal of the log: why is not-extension,
// rolled-back or key-not-trusted; Entry is its witness.refused entry.
// AcknowledgedAt is set once an administrator acknowledged it.
type WitnessRefusal struct {
	Why            string     `json:"why"`
	Detail         string     `json:"detail"`
	At             time.Time  `json:"at"`
	WitnessSize    int64      `json:"witness_size"`
	LogSize        int64      `json:"log_size"`
	Entry          int64      `json:"entry"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
	AcknowledgedBy string     `json:"acknowledged_by,omitempty"`
}

// CaptureStatus describes traffic logging: whether it is on, under which
// case, and what it has produced.
type CaptureStatus struct {
	On        bool       `json:"on"`
	Case      string     `json:"case,omitempty"`
	Mode      string     `json:"mode,omitempty"`
	Interface string     `json:"interface,omitempty"`
	Until     *time.Time `json:"until,omitempty"`
	Reason    string     `json:"reason,omitempty"` // when off: why
	Cases     []CaseInfo `json:"cases,omitempty"`
	Packets   uint64     `json:"packets"`
	Drops     uint64     `json:"drops"`
	Segments  int        `json:"segments"`
	Bytes     int64      `json:"bytes"`
	NextCheck *time.Time `json:"next_change,omitempty"`
}

// CaseInfo is one declared case and what carrel made of it.
type CaseInfo struct {
	ID     string `json:"id"`
	State  string `json:"state"` // "active", "pending", "ended", "refused", "out-of-scope"
	Reason string `json:"reason,omitempty"`
}
