package export

import (
	"encoding/json"
	"time"
)

// custodyFormat is the first field of custody.json; a reader refuses any
// other value.
const custodyFormat = "carrel custody v1"

// Custody is data/custody.json: who exported what, when, on which PC, with
// which tool, and the SHA-256 of every sealed and decrypted traffic file.
//
// Its JSON keys are part of the bundle format: courts keep bundles for
// years. Only add keys; never rename or remove one.
type Custody struct {
	Format     string    `json:"format"`
	Order      OrderJSON `json:"order"`
	Exporter   string    `json:"exporter"`
	ExportedAt time.Time `json:"exported_at"`
	Actor      string    `json:"actor"` // the account that ran the export
	PC         string    `json:"pc"`    // the PC whose data this is
	Host       string    `json:"host"`  // the computer's name
	Tool       string    `json:"tool"`  // "carrel <version>"
	Window     struct {
		From time.Time `json:"from"`
		To   time.Time `json:"to"`
	} `json:"window"`
	PCsRequested []string `json:"pcs_requested"` // empty: every PC
	Cases        []string `json:"cases"`         // misuse cases whose traffic or declarations overlap the window
	ConfigSHA256 string   `json:"config_sha256"` // of data/config/carrel.toml
	Bookings     struct {
		File string `json:"file"`
		Rows int    `json:"rows"`
	} `json:"bookings"`
	Segments []SegmentJSON `json:"segments"` // sealed segments included, oldest first
	Omitted  []OmittedJSON `json:"omitted"`  // segments overlapping the window that could not be included
	Audit    struct {
		Origin         string `json:"origin"`
		CheckpointSize int64  `json:"checkpoint_size"`
		Entries        int    `json:"entries"`
		ExportStartSeq int64  `json:"export_start_seq"`
	} `json:"audit"`
}

// OrderJSON is the court order in custody.json.
type OrderJSON struct {
	Ref       string `json:"ref"`
	Court     string `json:"court"`
	Requester string `json:"requester"`
}

// SegmentJSON is one included sealed segment and what was decrypted from it.
type SegmentJSON struct {
	Name     string     `json:"name"`
	Case     string     `json:"case"`
	Format   string     `json:"format"`
	From     time.Time  `json:"from"` // record time range of the whole segment
	To       time.Time  `json:"to"`
	Records  int64      `json:"records"` // in the whole segment
	InWindow int64      `json:"in_window"`
	Sealed   FileJSON   `json:"sealed"`
	Content  []FileJSON `json:"decrypted"`
}

// FileJSON names a payload file and its digest.
type FileJSON struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// OmittedJSON is a segment that overlaps the window but is not in the
// bundle, and why.
type OmittedJSON struct {
	Name  string `json:"name"`
	Case  string `json:"case"`
	State string `json:"state"`
	Why   string `json:"why"`
}

func (c *Custody) encode() ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
