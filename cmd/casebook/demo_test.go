package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
	"github.com/casebookhq/casebook/casebook/syncbuf"
	"github.com/casebookhq/casebook/ingest/senderauth/dnstest"
)

// TestDemo starts `casebook demo` end to end — its own database, the in-memory
// mailbox, the SMTP sink, the real poller, outbox and web page — and checks that what
// it prints is true: the replies are on their cases, the owners were mailed, the
// customer can log in with the printed temporary password and is made to change it,
// and the metrics count the ingest. Nothing secret or from a file reaches the log.
func TestDemo(t *testing.T) {
	d := startDemo(t)
	rep, admin, name, adminAddr := d.rep, d.admin, d.name, d.adminAddr

	t.Run("summary", func(t *testing.T) {
		if rep.Ingested != 3 || rep.Attachments != 5 || rep.Notifications != 3 || rep.Quarantined != 0 {
			t.Errorf("summary %q, want 3 replies, 5 attachments, 3 notifications", rep.Summary)
		}
		if len(rep.Cases) != 3 || !strings.HasPrefix(rep.Web, "http://127.0.0.1:") || rep.Database != name {
			t.Errorf("report %+v", rep)
		}
	})

	t.Run("replies on their cases", func(t *testing.T) {
		dbURL := strings.Replace(admin, "/"+dbName(t, admin)+"?", "/"+name+"?", 1)
		wantFiles := []int{2, 2, 1}
		for i, ref := range rep.Cases {
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"case", "show", ref, "--json", "--database-url", dbURL}, &out, &errb); code != 0 {
				t.Fatalf("case show %s: %s", ref, errb.String())
			}
			var shown struct {
				Attachments []struct {
					Filename string `json:"filename"`
				} `json:"attachments"`
			}
			if err := json.Unmarshal(out.Bytes(), &shown); err != nil {
				t.Fatal(err)
			}
			if len(shown.Attachments) != wantFiles[i] {
				t.Errorf("%s has %d attachments, want %d", ref, len(shown.Attachments), wantFiles[i])
			}
		}
	})

	t.Run("mail kept by the sink", func(t *testing.T) {
		files, _ := filepath.Glob(filepath.Join(rep.MailDir, "*.eml"))
		owners := 0
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// The owner's notifications; the owner's account mail names the owner too.
			if bytes.Contains(b, []byte("\nTo: <"+demoStaff+">")) {
				owners++
			}
		}
		// Two new-account mails, three case mails, three owner notifications.
		if len(files) != 8 || owners != 3 {
			t.Errorf("%d mails kept, %d to the owner", len(files), owners)
		}
	})

	t.Run("customer login forces a new password", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Get(rep.Web + "login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /login: %s", resp.Status)
		}
		resp, err = client.PostForm(rep.Web+"login", url.Values{"email": {rep.Customer}, "password": {rep.TemporaryPassword}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/password" {
			t.Errorf("login with the temporary password: %s to %q, want 303 to /password", resp.Status, loc)
		}
	})

	t.Run("metrics count the ingest", func(t *testing.T) {
		resp, err := http.Get("http://" + adminAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`casebook_updates_added_total{source="email"} 3`,
			`casebook_attachment_bytes_total{source="email"}`,
			`casebook_outbox_mails{status="pending"} 0`,
			`casebook_http_request_duration_seconds_count{code="200",method="GET",route="GET /login"}`,
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if !strings.Contains(string(b), `casebook_imap_messages_fetched_total{mailbox="imap://support%40support.example@`) {
			t.Error("metrics lack the fetched messages")
		}
		resp, err = http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/readyz: %s", resp.Status)
		}
	})

	log := d.stop(t)
	for _, secret := range []string{rep.TemporaryPassword, rep.StaffPassword, demoMailboxPw, "all values within range", "2026-01-05,121,79"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
	// Not a terminal: one JSON object a line.
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var rec struct{ Time, Level, Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Level == "" || rec.Msg == "" {
			t.Errorf("log line %q is not a JSON record: %v", line, err)
			break
		}
	}
}

// TestDemoOwnMail feeds the demo a directory of .eml files: a stranger's mail is
// quarantined, and the summary says so.
func TestDemoOwnMail(t *testing.T) {
	dir := t.TempDir()
	stranger := "From: eve@elsewhere.example\r\nTo: support@support.example\r\nSubject: Re: [CASE-000001] results\r\n" +
		"Message-ID: <own-1@elsewhere.example>\r\nDate: Mon, 5 Jan 2026 10:00:00 +0000\r\n\r\nHere.\r\n"
	if err := os.WriteFile(filepath.Join(dir, "stranger.eml"), []byte(stranger), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDemo(t, "--eml", dir)
	if d.rep.Ingested != 3 || d.rep.Quarantined != 1 {
		t.Errorf("summary %q, want 3 replies ingested and 1 quarantined", d.rep.Summary)
	}
	d.stop(t)
}

// runningDemo is a demo started by startDemo.
type runningDemo struct {
	rep                    demoReport
	admin, name, adminAddr string
	cancel                 context.CancelFunc
	exit                   chan int
	stderr                 *syncbuf.Buffer
}

// startDemo runs `casebook demo --json` on its own database and ports and returns once
// it has printed its report.
func startDemo(t *testing.T, args ...string) *runningDemo {
	t.Helper()
	admin := pgtest.URL(t) // skips, or fails in CI, without PostgreSQL
	t.Setenv("CASEBOOK_DNS_RESOLVER", dnstest.Start(t).Addr)
	name := pgtest.UniqueName("casebook_demo_test")
	t.Cleanup(func() { dropTestDatabase(t, admin, name) })
	webAddr, adminAddr, dataDir := freeAddr(t), freeAddr(t), t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pr, pw := io.Pipe()
	d := &runningDemo{admin: admin, name: name, adminAddr: adminAddr, cancel: cancel, exit: make(chan int, 1), stderr: &syncbuf.Buffer{}}
	go func() {
		d.exit <- run(ctx, append([]string{"demo", "--json", "--database-url", admin, "--demo-database", name,
			"--http", webAddr, "--admin", adminAddr, "--data-dir", dataDir}, args...), pw, d.stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadBytes('\n')
	if err != nil {
		t.Fatalf("demo printed nothing: %v\n%s", err, d.stderr.String())
	}
	go io.Copy(io.Discard, pr)
	if err := json.Unmarshal(line, &d.rep); err != nil {
		t.Fatalf("demo output %q: %v", line, err)
	}
	return d
}

// stop ends the demo as Ctrl-C does and returns its log.
func (d *runningDemo) stop(t *testing.T) string {
	t.Helper()
	d.cancel()
	select {
	case code := <-d.exit:
		if code != 0 {
			t.Errorf("demo exited %d after Ctrl-C:\n%s", code, d.stderr.String())
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("demo still running after its context ended")
	}
	return d.stderr.String()
}

// dbName is the database named by a PostgreSQL URL.
func dbName(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

func dropTestDatabase(t *testing.T, admin, name string) {
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/postgres"
	db, err := sql.Open("postgres", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(name) + " WITH (FORCE)"); err != nil {
		t.Error(err)
	}
}

// TestDemoDropsOnlyDemoDatabases checks the demo refuses to recreate a database whose
// name does not mark it as a demo's, before it connects to anything.
func TestDemoDropsOnlyDemoDatabases(t *testing.T) {
	for _, name := range []string{"casebook", "postgres", "demo_casebook", "Casebook_demo"} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"demo", "--demo-database", name, "--database-url", "postgres://postgres@127.0.0.1:1/x?sslmode=disable"}, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), "must start with casebook_demo") {
				t.Errorf("exit %d, stderr %q", code, stderr.String())
			}
		})
	}
}

// TestDemoStoppedDuringStartExits stops the demo in the moment between start and its
// summary, in each order the stop can be seen: the components finish first, or a query
// is cancelled first. Either way the demo returns instead of waiting for a result that
// was already taken.
func TestDemoStoppedDuringStartExits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		activity func(context.Context) (postgres.Activity, error)
	}{
		{"components finish first", func(context.Context) (postgres.Activity, error) { return postgres.Activity{}, nil }},
		{"query cancelled first", func(ctx context.Context) (postgres.Activity, error) { return postgres.Activity{}, ctx.Err() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			done := make(chan error, 1)
			done <- nil
			a := &app{stdout: io.Discard, stderr: io.Discard}
			returned := make(chan error, 1)
			go func() { returned <- a.settleDemo(ctx, tc.activity, 3, done, demoReport{}) }()
			select {
			case err := <-returned:
				if err != nil {
					t.Errorf("settleDemo after a stop: %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the demo did not return after it was stopped")
			}
		})
	}
}
