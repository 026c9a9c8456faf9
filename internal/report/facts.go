package report

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/booking"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/seal"
)

// bookingsFile is the register's name in the data folder (the daemon's).
const bookingsFile = "bookings.db"

// Input says where a report's facts come from and when it is made.
type Input struct {
	Config *config.Config
	// Now is the moment the report is made.
	Now time.Time
	// Version is carrel's version, printed in the report.
	Version string
	// Trusted is a checkpoint kept off the PC and Verifiers the head
	// librarian's verifier keys; both optional (see audit.VerifyOptions).
	Trusted   []byte
	Verifiers []string
	// WitnessKeys, when given, are the witnesses' verifier keys as their
	// operators publish them, kept off the PC: cosignatures are judged
	// with these instead of the keys in the config, which whoever
	// administers the PC can change. WitnessQuorum, when above 0, replaces
	// the config's audit.witness_quorum.
	WitnessKeys   []string
	WitnessQuorum int
}

// Facts is everything a report is made from, read once.
type Facts struct {
	Config  *config.Config
	Now     time.Time
	Version string
	// Entries is the whole audit log, oldest first.
	Entries []audit.Entry
	Verify  Verification
	// Bookings is nil when the data folder holds no register yet.
	Bookings *booking.Summary
	// Traffic is nil when nothing was ever captured on this PC.
	Traffic *seal.Summary
	// Witnesses are the config's witnesses with what the log holds of
	// each (witness.go), WitnessQuorum how many make a checkpoint
	// witnessed. CosignaturesRejected are stored cosignatures by a
	// configured witness that do not count; CosignaturesUnchecked counts
	// those by witnesses the config does not list.
	Witnesses     []WitnessFacts
	WitnessQuorum int
	// WitnessKeysGiven says the witness keys came from Input.WitnessKeys,
	// not from the config on the PC.
	WitnessKeysGiven      bool
	CosignaturesRejected  []RejectedCosignature
	CosignaturesUnchecked int
}

// Verification is what `carrel audit verify` would say now.
type Verification struct {
	OK          bool   `json:"ok"`
	Problem     string `json:"problem,omitempty"`
	Entries     int64  `json:"entries"`
	Checkpoints int    `json:"checkpoints"`
	// LatestSize is how many entries the latest signed checkpoint covers.
	LatestSize int64 `json:"latest_checkpoint_size"`
	// Trusted is the off-PC checkpoint given to the report and verified;
	// nil when none was given.
	Trusted *TrustedCheckpoint `json:"trusted_checkpoint,omitempty"`
	// VerifierKeyGiven says the checkpoints were checked against a
	// verifier key from off the PC rather than one the log recorded.
	VerifierKeyGiven bool `json:"verifier_key_given"`
}

// TrustedCheckpoint is an off-PC checkpoint the log was shown to extend.
type TrustedCheckpoint struct {
	Size int64 `json:"size"`
	// Covers is the time of the newest entry it covers: the log up to this
	// moment is proven against a copy kept off the PC.
	Covers time.Time `json:"covers_until"`
}

// Gather reads the audit log, verifies it, and summarises the booking
// register and the traffic store of the config's data folder. It changes
// and creates nothing. A missing audit log is an error: without it a report
// would state nothing true.
func Gather(ctx context.Context, in Input) (*Facts, error) {
	if in.Config == nil {
		return nil, errors.New("report: no config")
	}
	if in.Now.IsZero() {
		return nil, errors.New("report: no time of making")
	}
	dataDir := in.Config.Storage.DataDir
	f := &Facts{Config: in.Config, Now: in.Now, Version: in.Version}
	log, err := audit.Open(filepath.Join(dataDir, audit.DBFile), audit.Options{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	defer log.Close()
	if err := log.Each(ctx, audit.Query{}, func(e audit.Entry) error {
		f.Entries = append(f.Entries, e)
		return nil
	}); err != nil {
		// An entry that cannot be read is what verify reports; the report
		// goes on with the entries before it and says so below.
		f.Verify.Problem = err.Error()
	}
	f.Verify = verify(ctx, log, in, f.Verify.Problem)
	if err := gatherWitnesses(ctx, log, in, f); err != nil {
		return nil, fmt.Errorf("reading the witnesses' cosignatures: %w", err)
	}

	bs, err := booking.ReadSummary(ctx, filepath.Join(dataDir, bookingsFile))
	switch {
	case errors.Is(err, booking.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		f.Bookings = &bs
	}
	ts, err := seal.ReadSummary(ctx, dataDir)
	switch {
	case errors.Is(err, seal.ErrNoStore):
	case err != nil:
		return nil, err
	default:
		f.Traffic = &ts
	}
	return f, nil
}

func verify(ctx context.Context, log *audit.Log, in Input, readProblem string) Verification {
	v := Verification{VerifierKeyGiven: len(in.Verifiers) > 0}
	rep, err := log.Verify(ctx, audit.VerifyOptions{Trusted: in.Trusted, Verifiers: in.Verifiers})
	if err != nil {
		v.Problem = err.Error()
		if readProblem != "" && !errors.Is(err, audit.ErrTampered) {
			v.Problem = readProblem
		}
		return v
	}
	v.OK = readProblem == ""
	v.Problem = readProblem
	v.Entries, v.Checkpoints = rep.Entries, rep.Checkpoints
	if rep.Latest != nil {
		v.LatestSize = rep.Latest.Size
	}
	if rep.Trusted != nil {
		t := &TrustedCheckpoint{Size: rep.Trusted.Size}
		if e, err := log.Entry(ctx, rep.Trusted.Size-1); err == nil {
			t.Covers = e.Time
		}
		v.Trusted = t
	}
	return v
}
