package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
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

// terminateSessions ends the sessions of the test's own database other than the
// caller's, as a PostgreSQL restart or an operator would; filter narrows them.
func terminateSessions(t *testing.T, st interface {
	DB() *sqlx.DB
}, filter string) int {
	t.Helper()
	var n int
	err := st.DB().QueryRowContext(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND `+filter).Scan(&n)
	if err != nil {
		t.Fatalf("terminate sessions: %v", err)
	}
	return n
}

// TestWithLockStopsWithinASecond kills the holder's session and measures how long
// its work goes on: the bound is one second (the watch checks every interval
// and gives each check twice that), and the lock must be free for a standby at once.
func TestWithLockStopsWithinASecond(t *testing.T) {
	ctx := context.Background()
	st := pgtest.Store(t)
	const name = "casebook/test\x00fence"
	for i := range 3 {
		var killed time.Time
		var stopped time.Duration
		held, err := st.WithLock(ctx, name, 250*time.Millisecond, func(lctx context.Context) error {
			if err := st.HoldsLock(lctx); err != nil {
				t.Errorf("HoldsLock while held: %v", err)
			}
			killed = time.Now()
			terminateSessions(t, st, `pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')`)
			select {
			case <-lctx.Done():
				stopped = time.Since(killed)
			case <-time.After(5 * time.Second):
				return errors.New("work went on after its lock's session died")
			}
			if err := st.HoldsLock(lctx); err == nil {
				t.Error("HoldsLock after the session died: nil")
			}
			return nil
		})
		if !held || err == nil {
			t.Fatalf("round %d: WithLock whose session died: %v, %v; want the lost session's error", i, held, err)
		}
		if stopped > time.Second {
			t.Errorf("round %d: work stopped %v after the lock's session died; want <= 1s", i, stopped)
		}
		t.Logf("round %d: stopped %v after the kill", i, stopped)
	}
	if err := st.HoldsLock(ctx); err == nil {
		t.Errorf("HoldsLock outside WithLock: %v", err)
	}
}

// TestWithLockAfterRestart ends every session of the test's database, pooled ones
// included, as a PostgreSQL restart does: the next lock attempt must succeed at once
// rather than fail on a dead pooled connection and wait a retry interval.
func TestWithLockAfterRestart(t *testing.T) {
	ctx := context.Background()
	st := pgtest.Store(t)
	const name = "casebook/test\x00restart"
	// Fill the pool with idle connections, as a running instance has.
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { st.DB().ExecContext(ctx, `SELECT pg_sleep(0.05)`) })
	}
	wg.Wait()
	for range 2 {
		if held, err := st.WithLock(ctx, name, time.Second, func(context.Context) error { return nil }); !held || err != nil {
			t.Fatalf("WithLock before the restart: %v, %v", held, err)
		}
	}
	admin, err := sql.Open("postgres", pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var dbName string
	if err := st.DB().QueryRowContext(ctx, `SELECT current_database()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := admin.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1`, dbName).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no pooled session to end")
	}
	held, err := st.WithLock(ctx, name, time.Second, func(context.Context) error { return nil })
	if !held || err != nil {
		t.Fatalf("first WithLock after %d sessions ended: %v, %v; want the lock at once", n, held, err)
	}
}

// TestLockPassesWhenTheNetworkGoesSilent drops every packet of the lock session's
// connection both ways (nftables rules on its port), as when the holder's machine
// loses power or its network: no FIN, no RST. The holder's work must stop within a
// second (its checks go unanswered; lib/pq alone would wait for them for minutes), the
// server must end the silent session, and free the lock for a standby, within the
// keepalives the session asks for (5 s idle, then 3 probes a second apart), and the
// holder's WithLock must return.
func TestLockPassesWhenTheNetworkGoesSilent(t *testing.T) {
	nft := nftables(t)
	ctx := t.Context()
	st := pgtest.Store(t)
	const name = "casebook/test\x00partition"
	ports := make(chan int, 1)
	cutDone := make(chan time.Time, 1)
	stopped := make(chan time.Duration, 1)
	holder := make(chan error, 1)
	go func() {
		_, err := st.WithLock(ctx, name, 250*time.Millisecond, func(lctx context.Context) error {
			var port int
			if err := st.DB().GetContext(ctx, &port, `SELECT client_port FROM pg_stat_activity
				WHERE pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)
				AND datname = current_database()`); err != nil {
				return err
			}
			ports <- port
			at := <-cutDone
			select {
			case <-lctx.Done():
				stopped <- time.Since(at)
			case <-time.After(20 * time.Second):
				stopped <- -1
			}
			return nil
		})
		holder <- err
	}()
	var port int
	select {
	case port = <-ports:
	case err := <-holder:
		t.Fatalf("the holder ended before the cut: %v", err)
	}
	table := fmt.Sprintf("casebook_test_%d_%d", os.Getpid(), port)
	nft("add table inet " + table)
	t.Cleanup(func() { nft("delete table inet " + table) })
	nft("add chain inet " + table + " in { type filter hook input priority -300 ; }")
	nft(fmt.Sprintf("add rule inet %s in tcp sport %d tcp dport 5432 drop", table, port))
	nft(fmt.Sprintf("add rule inet %s in tcp sport 5432 tcp dport %d drop", table, port))
	at := time.Now()
	cutDone <- at

	var took time.Duration
	for {
		held, err := st.WithLock(ctx, name, 250*time.Millisecond, func(context.Context) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if held {
			took = time.Since(at)
			break
		}
		if time.Since(at) > 30*time.Second {
			t.Fatal("the silent holder still held the lock 30 s after the cut")
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("a standby took the lock %v after the cut", took)
	if took > 15*time.Second {
		t.Errorf("the lock passed %v after the cut; want within the keepalives (about 8 s) and some slack", took)
	}
	d := <-stopped
	t.Logf("the holder's work stopped %v after the cut", d)
	if d < 0 || d > time.Second {
		t.Errorf("the holder's work went on %v after the cut (-1: past 20 s); want <= 1s, long before the takeover", d)
	}
	if err := <-holder; err == nil {
		t.Error("the silent holder's WithLock returned no error")
	}
}

// nftables returns a function that applies nft commands, skipping the test where
// nftables cannot be used (not root, or nft not installed) unless CI=true.
func nftables(t *testing.T) func(cmd string) {
	t.Helper()
	_, err := exec.LookPath("nft")
	if err != nil || os.Geteuid() != 0 {
		msg := "cutting a connection needs root and nft (apt-get install nftables)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + ": required in CI")
		}
		t.Skip(msg)
	}
	nft := func(cmd string) string {
		t.Helper()
		out, err := exec.Command("nft", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("nft %s: %v: %s", cmd, err, out)
		}
		return string(out)
	}
	// A run that died before its cleanup left its table: its port may be any
	// connection's now. A table is named by its test process, so that a run beside
	// this one keeps its own.
	for _, line := range strings.Split(nft("list tables"), "\n") {
		table, ok := strings.CutPrefix(strings.TrimSpace(line), "table inet casebook_test_")
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(table, "_")
		if n, err := strconv.Atoi(pid); err == nil && alive(n) {
			continue
		}
		nft("delete table inet casebook_test_" + table)
	}
	return func(cmd string) { t.Helper(); nft(cmd) }
}

// alive reports whether a process pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
