package audit

import (
	"context"
	"fmt"
	"testing"
)

// benchLog returns a log of n entries (plus key.created) with a checkpoint
// at the end. Setup records in batches, so it does not pay one fsync per
// entry.
func benchLog(b *testing.B, n int) *Log {
	b.Helper()
	ctx := context.Background()
	l, _ := testLog(b)
	for done := 0; done < n; {
		err := l.Update(ctx, func(tx *Tx) error {
			for i := 0; i < 1000 && done < n; i, done = i+1, done+1 {
				if _, err := tx.Record(ctx, sampleEvent(done)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkRecord is one durable append: the entry, its tree hashes and the
// commit with synchronous=FULL.
func BenchmarkRecord(b *testing.B) {
	ctx := context.Background()
	l, _ := testLog(b)
	i := 0
	for b.Loop() {
		if _, err := l.Record(ctx, sampleEvent(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkVerify checks a whole log: every leaf recomputed, every stored
// hash compared, every checkpoint opened.
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			l := benchLog(b, n)
			for b.Loop() {
				if _, err := l.Verify(context.Background(), VerifyOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n+1), "ns/entry")
		})
	}
}

// BenchmarkProve makes one inclusion proof in a log of 10000 entries, as an
// export does for each entry it carries.
func BenchmarkProve(b *testing.B) {
	ctx := context.Background()
	l := benchLog(b, 10000)
	cp, err := l.Latest(ctx)
	if err != nil {
		b.Fatal(err)
	}
	seq := int64(0)
	for b.Loop() {
		if _, err := l.ProveAt(ctx, seq%cp.Size, cp); err != nil {
			b.Fatal(err)
		}
		seq += 7919
	}
}

// BenchmarkVerifyInclusion is the independent check of one entry.
func BenchmarkVerifyInclusion(b *testing.B) {
	fx := newFixture(b)
	for b.Loop() {
		if err := VerifyInclusion(fx.entries[3], fx.proofs[3], fx.note, fx.vkey); err != nil {
			b.Fatal(err)
		}
	}
}
