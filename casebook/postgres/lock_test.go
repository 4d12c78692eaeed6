package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"casebook/casebook/postgres/pgtest"
)

// TestWithLock checks the lock that lets one instance of several do a piece of work:
// while one holds it the other is told so; it passes on when released; and the
// holder's work is stopped when the session that holds the lock dies.
func TestWithLock(t *testing.T) {
	ctx := context.Background()
	st := pgtest.Store(t)
	const name = "casebook/test\x00lock"

	held, err := st.WithLock(ctx, name, 50*time.Millisecond, func(ctx context.Context) error {
		other, err := st.WithLock(ctx, name, time.Second, func(context.Context) error {
			t.Error("a second holder ran")
			return nil
		})
		if other || err != nil {
			t.Errorf("second WithLock while held: %v, %v", other, err)
		}
		return nil
	})
	if !held || err != nil {
		t.Fatalf("WithLock: %v, %v", held, err)
	}
	if held, err := st.WithLock(ctx, name, time.Second, func(context.Context) error { return nil }); !held || err != nil {
		t.Fatalf("WithLock after release: %v, %v", held, err)
	}

	// Kill the holder's session: its work must end with a cause, and the lock be free.
	held, err = st.WithLock(ctx, name, 50*time.Millisecond, func(lctx context.Context) error {
		if _, err := st.DB().ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
			WHERE locktype = 'advisory' AND pid <> pg_backend_pid()
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
			return err
		}
		select {
		case <-lctx.Done():
			return context.Cause(lctx)
		case <-time.After(5 * time.Second):
			return errors.New("work went on after its lock's session died")
		}
	})
	if !held || err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("WithLock whose session died: %v, %v; want a lost-connection error", held, err)
	}
	if held, err := st.WithLock(ctx, name, time.Second, func(context.Context) error { return nil }); !held || err != nil {
		t.Errorf("WithLock after the holder died: %v, %v", held, err)
	}
}
