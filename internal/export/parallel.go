package export

import (
	"context"
	"errors"
	"runtime"
	"sync"
)

// forEach runs fn for 0 … n-1 on every core and returns the error of the
// lowest index that failed, so that "the first problem" does not depend on
// scheduling. After a failure the indexes not yet started are skipped; a
// skipped or cancelled one reports context.Canceled, which another index's
// real error outranks.
func forEach(ctx context.Context, n int, fn func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := range next {
				if errs[i] = ctx.Err(); errs[i] == nil {
					errs[i] = fn(i)
				}
				if errs[i] != nil {
					cancel()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
