package booking

// migrations bring bookings.db from version i to i+1 (PRAGMA user_version).
// Append only: a released migration is never edited.
var migrations = []string{
	// 1: the register, the liveness mark and the retention documentation.
	`CREATE TABLE bookings (
		id             INTEGER PRIMARY KEY,
		pc_id          TEXT    NOT NULL,
		ref            TEXT    NOT NULL,
		patron_hmac    BLOB,
		start_ms       INTEGER NOT NULL,
		planned_end_ms INTEGER,
		end_ms         INTEGER,
		ended_how      TEXT CHECK (ended_how IN ('ended', 'interrupted')),
		CHECK ((end_ms IS NULL) = (ended_how IS NULL)),
		CHECK (end_ms IS NULL OR end_ms >= start_ms)
	) STRICT;
	CREATE UNIQUE INDEX bookings_open_ref ON bookings (ref) WHERE end_ms IS NULL;
	CREATE INDEX bookings_start ON bookings (start_ms);
	CREATE INDEX bookings_end ON bookings (end_ms);

	-- The last moment the service was known alive; open bookings are closed
	-- at this moment after an unclean stop.
	CREATE TABLE alive (
		id    INTEGER PRIMARY KEY CHECK (id = 1),
		at_ms INTEGER NOT NULL
	) STRICT;

	-- Events to forward to the audit log (an outbox): written in the same
	-- transaction as the change they document, marked once the audit log
	-- has them. The retention runs stay as the register's own record that
	-- retention ran (G6).
	CREATE TABLE events (
		id        INTEGER PRIMARY KEY,
		kind      TEXT    NOT NULL CHECK (kind IN ('retention', 'interrupted')),
		at_ms     INTEGER NOT NULL,
		count     INTEGER NOT NULL,
		cutoff_ms INTEGER,
		from_ms   INTEGER,
		to_ms     INTEGER,
		audited   INTEGER NOT NULL DEFAULT 0
	) STRICT;`,
	// 2: the boot of the PC the service last ran in, so that a clean stop
	// followed by a restart of the PC is told from a clean restart of the
	// service; why bookings were closed as interrupted; and an index for a
	// patron's access request.
	`ALTER TABLE alive ADD COLUMN boot_id TEXT;
	ALTER TABLE events ADD COLUMN reason TEXT;
	CREATE INDEX bookings_patron ON bookings (patron_hmac) WHERE patron_hmac IS NOT NULL;`,
}
