package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
)

// TestMigrateConcurrently starts two instances on one empty database at once: the
// advisory lock makes them take turns, so each migration runs exactly once.
func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	empty := pgtest.EmptyURL(t)

	var wg sync.WaitGroup
	applied := make([][]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			s, err := postgres.Open(ctx, empty)
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			applied[i], errs[i] = s.Migrate(ctx)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if total := len(applied[0]) + len(applied[1]); total == 0 || (len(applied[0]) > 0 && len(applied[1]) > 0) {
		t.Errorf("applied %v and %v: want all by one instance, none by the other", applied[0], applied[1])
	}
	s, err := postgres.Open(ctx, empty)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CheckSchema(ctx); err != nil {
		t.Errorf("CheckSchema after migration: %v", err)
	}
}

func TestCheckSchemaRefusesUnknown(t *testing.T) {
	st := pgtest.Store(t)
	ctx := context.Background()
	if err := st.CheckSchema(ctx); err != nil {
		t.Fatalf("migrated database: %v", err)
	}
	if _, err := st.DB().Exec(`INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	if err := st.CheckSchema(ctx); err == nil || !strings.Contains(err.Error(), "newer casebook") {
		t.Errorf("CheckSchema with a future migration: %v", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://postgres@127.0.0.1:1/x?sslmode=disable")
	if err == nil || !strings.Contains(err.Error(), "cannot reach PostgreSQL at 127.0.0.1:1") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenCreatesDatabase(t *testing.T) {
	s, err := postgres.Open(context.Background(), pgtest.UnusedURL(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
