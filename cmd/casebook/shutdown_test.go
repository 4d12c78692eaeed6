package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"casebook/casebook/postgres/pgtest"
)

// TestRunComponentsFinishesInFlightWork cancels serve's context (what SIGTERM does)
// while a component is in the middle of a unit of work, and checks that the work is
// finished, not cut off, and that no component is left running.
func TestRunComponentsFinishesInFlightWork(t *testing.T) {
	a := &app{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	started := make(chan struct{})
	release := make(chan struct{})
	var finished, stopped atomic.Int32
	worker := component{name: "worker", run: func(ctx context.Context) error {
		close(started)
		// One unit of work in flight: it does not watch ctx, as a commit must not.
		<-release
		finished.Add(1)
		<-ctx.Done()
		stopped.Add(1)
		return ctx.Err()
	}}
	idle := component{name: "idle", run: func(ctx context.Context) error {
		<-ctx.Done()
		stopped.Add(1)
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runComponents(ctx, a, []component{worker, idle}) }()
	<-started
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("runComponents: %v", err)
	}
	if finished.Load() != 1 || stopped.Load() != 2 {
		t.Errorf("finished %d units of work, %d components stopped; want 1 and 2", finished.Load(), stopped.Load())
	}
}

// TestRunComponentsStopsOnFailure checks one failing component stops the others and
// its error is what serve returns.
func TestRunComponentsStopsOnFailure(t *testing.T) {
	a := &app{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	boom := errors.New("mailbox login refused")
	var stopped atomic.Int32
	comps := []component{
		{name: "imap", run: func(context.Context) error { return boom }},
		{name: "web", run: func(ctx context.Context) error { <-ctx.Done(); stopped.Add(1); return nil }},
	}
	err := runComponents(context.Background(), a, comps)
	if !errors.Is(err, boom) || stopped.Load() != 1 {
		t.Errorf("err = %v, web stopped %d times", err, stopped.Load())
	}
}

// TestServeProcess is not a test on its own: TestServeExitsOnSIGTERM runs the test
// binary again with CASEBOOK_SERVE_PROCESS=1 to get a real `casebook serve` process
// whose main sees the signal.
func TestServeProcess(t *testing.T) {
	if os.Getenv("CASEBOOK_SERVE_PROCESS") != "1" {
		t.Skip("run by TestServeExitsOnSIGTERM")
	}
	os.Args = append([]string{"casebook"}, strings.Fields(os.Getenv("CASEBOOK_SERVE_ARGS"))...)
	main()
}

// TestServeExitsOnSIGTERM starts `casebook serve`, waits until it answers, sends
// SIGTERM and expects a clean exit within the shutdown timeout.
func TestServeExitsOnSIGTERM(t *testing.T) {
	db := pgtest.URL(t)
	admin, web := freeAddr(t), freeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeProcess$")
	cmd.Env = append(os.Environ(), "CASEBOOK_SERVE_PROCESS=1",
		"CASEBOOK_SERVE_ARGS=serve --admin "+admin+" --http "+web+" --insecure-cookies --database-url "+db+" --data-dir "+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("serve exited before it was ready: %v\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM\n%s", err, stderr.String())
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		cmd.Process.Kill()
		t.Fatalf("serve still running %s after SIGTERM\n%s", shutdownTimeout+5*time.Second, stderr.String())
	}
	for _, c := range []string{`"component":"admin"`, `"component":"web"`} {
		if !strings.Contains(stderr.String(), `"msg":"stopped",`+c) {
			t.Errorf("log does not show %s stopping:\n%s", c, stderr.String())
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
