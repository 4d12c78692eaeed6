package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
	"github.com/casebookhq/casebook/casebook/syncbuf"
	"github.com/casebookhq/casebook/cmd/casebook/demo"
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
	// Secrets everywhere, with dependencies that are down, so that their errors are logged.
	const imapPW, smtpPW, tokenKey = "Imap-Secret-1", "Smtp-Secret-2", "Token-Key-Secret-3-0123456789abcdefghij"
	closed := freeAddr(t)
	cmd.Env = append(environWithout("CASEBOOK_"), "CASEBOOK_SERVE_PROCESS=1", "CASEBOOK_TOKEN_KEY="+tokenKey,
		"CASEBOOK_SERVE_ARGS=serve --admin "+admin+" --http "+web+" --insecure-cookies --database-url "+db+" --data-dir "+t.TempDir()+
			" --imap imap://support:"+imapPW+"@"+closed+"/INBOX?tls=none --smtp smtp://casebook:"+smtpPW+"@"+closed+"?tls=none"+
			" --mail-from support@support.example --reply-address support@support.example --base-url http://"+web)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Up once /readyz lists the mailbox poller (down: its server is not there) and the
	// poller has logged its failed session. The deadline guards against a hang.
	deadline := time.After(time.Minute)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "imap imap://support@") && strings.Contains(stderr.String(), "mailbox session ended") {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("serve exited before it was up: %v\n%s", err, stderr.String())
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("serve not up after a minute:\n%s", stderr.String())
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
	for _, secret := range []string{imapPW, smtpPW, tokenKey} {
		if strings.Contains(stderr.String(), secret) {
			t.Errorf("the log holds the secret %q", secret)
		}
	}
	for _, c := range []string{`"component":"admin"`, `"component":"web"`} {
		if !strings.Contains(stderr.String(), `"msg":"stopped",`+c) {
			t.Errorf("log does not show %s stopping:\n%s", c, stderr.String())
		}
	}
}

// environWithout is the environment without the variables that start with prefix, so
// that a setting of the shell running the tests cannot change the process under test.
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeShutdownWithIngestInFlight stops `casebook serve` (as SIGTERM does: its
// context ends) while the poller is working through a mailbox of replies with large
// attachments, then starts it again: every reply ends up on its case exactly once,
// filed exactly once, and nothing is quarantined.
func TestServeShutdownWithIngestInFlight(t *testing.T) {
	ctx := context.Background()
	db, st, cases, srv := mailSetup(t, 3)
	const replies = 24
	from, to := &mail.Address{Address: "alice@acme.example"}, &mail.Address{Address: "support@support.example"}
	for i := range replies {
		c := cases[i%len(cases)]
		body := bytes.Repeat([]byte(fmt.Sprintf("%04d scan line\n", i)), 40<<10) // 600 KiB
		r := demo.Reply{Case: c, Text: fmt.Sprintf("reply %d", i), Files: []demo.Attachment{{Name: fmt.Sprintf("scan-%d.txt", i), ContentType: "text/plain", Body: body}}}
		raw, err := demo.Compose(r, from, to, time.Now(), fmt.Sprintf("<inflight-%d@acme.example>", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Append("INBOX", demo.Stamp(raw, "acme.example"), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	account := url.URL{Scheme: "imap", User: url.UserPassword(srv.User, srv.Password), Host: srv.Addr, Path: "/INBOX", RawQuery: "tls=none"}
	args := []string{"serve", "--imap", account.String(), "--http", "", "--admin", "", "--database-url", db,
		"--data-dir", t.TempDir(), "--imap-spool-dir", t.TempDir(), "--trusted-authserv-id", demo.AuthservID}
	updates := func() postgres.Activity {
		act, err := st.ActivityOf(ctx, "email", "owner_notification")
		if err != nil {
			t.Fatal(err)
		}
		return act
	}
	serve := func(until func(postgres.Activity) bool) postgres.Activity {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var stderr syncbuf.Buffer
		exit := make(chan int, 1)
		go func() { exit <- run(sctx, args, io.Discard, &stderr) }()
		for !until(updates()) {
			select {
			case code := <-exit:
				t.Fatalf("serve exited %d on its own:\n%s", code, stderr.String())
			case <-time.After(5 * time.Millisecond):
			}
		}
		cancel()
		select {
		case code := <-exit:
			if code != 0 {
				t.Fatalf("serve exited %d after the stop:\n%s", code, stderr.String())
			}
		case <-time.After(shutdownTimeout + 5*time.Second):
			t.Fatalf("serve still running %s after the stop", shutdownTimeout+5*time.Second)
		}
		return updates()
	}

	first := serve(func(a postgres.Activity) bool { return a.Updates >= 1 })
	t.Logf("stopped with %d of %d replies committed", first.Updates, replies)
	final := serve(func(a postgres.Activity) bool { return a.Updates >= replies })
	if final.Updates != replies || final.Attachments != replies || final.Quarantined != 0 {
		t.Errorf("after the restart: %+v, want %d updates with one file each and no quarantine", final, replies)
	}
	// The poller files after the commit; filing may trail the last commit a little.
	deadline := time.Now().Add(time.Minute)
	for {
		inbox, _ := srv.Count("INBOX")
		processed, _ := srv.Count("Casebook/Processed")
		if inbox == 0 && processed == replies {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("INBOX holds %d and Casebook/Processed %d, want 0 and %d", inbox, processed, replies)
		}
		serve(func(postgres.Activity) bool { inbox, _ = srv.Count("INBOX"); return inbox == 0 })
	}
}

// seedCases adds an org with a customer (alice@acme.example) and a staff owner, and
// n open cases.
// mailSetup is what the tests that run serve over mail start from: a database of
// its own with n seeded cases and an in-memory mailbox, both closed with t.
func mailSetup(t *testing.T, n int) (db string, st *postgres.Store, cases []demo.Case, srv *demo.IMAPServer) {
	t.Helper()
	db = pgtest.URL(t)
	st, err := postgres.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err = demo.StartIMAP("support@support.example", "pw", []string{"INBOX"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return db, st, seedCases(t, st, n), srv
}

func seedCases(t testing.TB, st *postgres.Store, n int) []demo.Case {
	t.Helper()
	ctx := context.Background()
	org, err := st.AddOrg(ctx, "Acme Health", "acme.example")
	if err != nil {
		t.Fatal(err)
	}
	cust, err := st.AddUser(ctx, postgres.NewUser{OrgID: &org.ID, Email: "alice@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	owner, err := st.AddUser(ctx, postgres.NewUser{Email: "sam@support.example", Staff: true})
	if err != nil {
		t.Fatal(err)
	}
	var cases []demo.Case
	for i := range n {
		s := fmt.Sprintf("Case %d", i+1)
		c, err := st.OpenCase(ctx, postgres.NewCase{OrgID: org.ID, RequesterID: cust.ID, OwnerID: owner.ID, Subject: s})
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, demo.Case{Ref: casebook.RefFormat{Prefix: "CASE"}.Format(c.Number), Subject: s})
	}
	return cases
}
