package audit

import (
	"path/filepath"
	"time"
)

// File names of the audit log in carrel's data folder.
const (
	DBFile  = "audit.db"
	KeyFile = "audit.key"
)

// OpenIn opens the audit log of a data folder for writing, as the service
// does: the signing key beside the database, and origin (the config's
// LogOrigin, "<audit.origin_prefix>/<pc id>") if the log is new; an
// existing log keeps its own. Other processes that record entries (an
// export, a hold release) use it so that every writer names the log the
// same way.
func OpenIn(dataDir, origin string, now func() time.Time) (*Log, error) {
	return Open(filepath.Join(dataDir, DBFile), Options{
		Origin: origin, KeyPath: filepath.Join(dataDir, KeyFile), Now: now,
	})
}
