// Package pgtest gives each test its own PostgreSQL database, cloned from a template
// migrated once per test binary, and drops it afterwards. Databases it did not create
// are never touched.
//
// A package that uses it runs its tests through Main:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/casebookhq/casebook/casebook/postgres"
)

// AdminURL is the server tests use, from CASEBOOK_TEST_DATABASE_URL (a URL whose
// database is only used to issue CREATE/DROP DATABASE).
func AdminURL() string {
	if u := os.Getenv("CASEBOOK_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var (
	once     sync.Once
	template string
	setupErr error
	admin    *sql.DB
)

// Main runs the package's tests and drops the template database afterwards.
func Main(m *testing.M) {
	code := m.Run()
	if template != "" {
		dropDatabase(template)
	}
	if admin != nil {
		admin.Close()
	}
	os.Exit(code)
}

// URLFor returns AdminURL with its database replaced by name.
func URLFor(name string) string {
	u := AdminURL()
	i := strings.LastIndex(u, "/")
	rest := ""
	if q := strings.IndexByte(u[i:], '?'); q >= 0 {
		rest = u[i+q:]
	}
	return u[:i+1] + name + rest
}

func setup() {
	admin, setupErr = sql.Open("postgres", AdminURL())
	if setupErr != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if setupErr = admin.PingContext(ctx); setupErr != nil {
		return
	}
	sweep(ctx)
	template = UniqueName("casebook_tmpl")
	if _, setupErr = admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(template)); setupErr != nil {
		template = ""
		return
	}
	st, err := postgres.Open(ctx, URLFor(template))
	if err != nil {
		setupErr = err
		return
	}
	defer st.Close()
	_, setupErr = st.Migrate(ctx)
}

// ready sets up the template once. Without a reachable PostgreSQL the test is skipped,
// or fails when CI=true: a check that cannot run must not pass silently in CI.
func ready(t testing.TB) {
	t.Helper()
	once.Do(setup)
	if setupErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required in CI: %v", setupErr)
		}
		t.Skipf("PostgreSQL not available (%v); run `make test` to start it", setupErr)
	}
}

// URL creates a fresh, migrated database for t and returns its URL. It is dropped when
// t ends.
func URL(t testing.TB) string {
	t.Helper()
	ready(t)
	name := UniqueName("casebook_test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// CREATE DATABASE … TEMPLATE needs the template to have no other session, so
	// concurrent clones are retried briefly.
	var err error
	for range 50 {
		_, err = admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)+" TEMPLATE "+pq.QuoteIdentifier(template))
		var pqErr *pq.Error
		if !errors.As(err, &pqErr) || pqErr.Code != "55006" { // object_in_use
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(name) })
	return URLFor(name)
}

// Store returns a Store on a fresh database for t, closed when t ends.
func Store(t testing.TB) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
}

// UniqueName returns a database name starting with prefix that no other test process
// uses. It carries this process's id, so that the sweep of a later run drops the
// database if this process dies before its cleanup (for the prefixes the sweep knows).
func UniqueName(prefix string) string {
	return fmt.Sprintf("%s_%d_%s", prefix, os.Getpid(), strings.ToLower(rand.Text()[:10]))
}

// EmptyURL creates an empty, unmigrated database for t and returns its URL; it is
// dropped when t ends.
func EmptyURL(t testing.TB) string {
	t.Helper()
	u := UnusedURL(t)
	name := u[strings.LastIndex(u, "/")+1:]
	name, _, _ = strings.Cut(name, "?")
	if _, err := admin.Exec("CREATE DATABASE " + pq.QuoteIdentifier(name)); err != nil {
		t.Fatalf("create empty database: %v", err)
	}
	return u
}

// UnusedURL returns the URL of a database that does not exist yet, for tests of
// creating it; whatever is created there is dropped when t ends.
func UnusedURL(t testing.TB) string {
	t.Helper()
	ready(t)
	name := UniqueName("casebook_test")
	t.Cleanup(func() { dropDatabase(name) })
	return URLFor(name)
}

// sweep drops databases UniqueName named in test processes that died before their
// cleanup ran (a timeout, a kill). Their names carry the creating process id; only
// names of that shape whose process is gone on this machine are dropped, and only on a
// loopback server, where "this machine" is the server's machine too.
func sweep(ctx context.Context) {
	u, err := url.Parse(AdminURL())
	if err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost" && u.Hostname() != "::1") {
		return
	}
	var names []string
	rows, err := admin.QueryContext(ctx, `SELECT datname FROM pg_database WHERE datname ~ '^casebook_(tmpl|test|demo_test)_[0-9]+_[a-z0-9]+$'`)
	if err != nil {
		return
	}
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			names = append(names, n)
		}
	}
	rows.Close()
	for _, n := range names {
		parts := strings.Split(n, "_")
		pid, err := strconv.Atoi(parts[len(parts)-2])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			dropDatabase(n)
		}
	}
}
