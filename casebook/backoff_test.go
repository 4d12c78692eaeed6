package casebook_test

import (
	"context"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

func TestBackoff(t *testing.T) {
	b := casebook.Backoff{Min: time.Second, Max: 8 * time.Second}
	steps := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for round := range 2 {
		for i, step := range steps {
			if d := b.Next(); d < step/2 || d > step {
				t.Errorf("round %d, try %d: wait %v, want within [%v, %v]", round, i, d, step/2, step)
			}
		}
		b.Reset()
	}
	// Jitter: many draws from one step are not all the same.
	seen := map[time.Duration]bool{}
	for range 20 {
		b.Reset()
		seen[b.Next()] = true
	}
	if len(seen) < 2 {
		t.Errorf("20 waits from the first step were all %v", b.Next())
	}
}

func TestSleepStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := casebook.Sleep(ctx, time.Hour); err == nil || time.Since(start) > time.Second {
		t.Errorf("Sleep on a cancelled context: %v after %v", err, time.Since(start))
	}
	if err := casebook.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep: %v", err)
	}
}
