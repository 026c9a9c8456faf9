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
// does: origin "carrel/<pc id>", the signing key beside the database. Other
// processes that record entries (an export, a hold release) use it so that
// every writer names the log the same way.
func OpenIn(dataDir, pcID string, now func() time.Time) (*Log, error) {
	return Open(filepath.Join(dataDir, DBFile), Options{
		Origin: "carrel/" + pcID, KeyPath: filepath.Join(dataDir, KeyFile), Now: now,
	})
}
