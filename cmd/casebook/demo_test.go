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
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"casebook/casebook/postgres/pgtest"
)

// syncBuffer is a bytes.Buffer safe to read while run writes the log into it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemo starts `casebook demo` end to end — its own database, the in-memory
// mailbox, the SMTP sink, the real poller, outbox and web page — and checks that what
// it prints is true: the replies are on their cases, the owners were mailed, the
// customer can log in with the printed temporary password and is made to change it,
// and the metrics count the ingest. Nothing secret or from a file reaches the log.
func TestDemo(t *testing.T) {
	admin := pgtest.URL(t) // skips, or fails in CI, without PostgreSQL
	name := "casebook_demo_test_" + strings.ToLower(filepath.Base(t.TempDir()))
	name = strings.NewReplacer("-", "_", ".", "_").Replace(name)
	t.Cleanup(func() { dropTestDatabase(t, admin, name) })
	webAddr, adminAddr, dataDir := freeAddr(t), freeAddr(t), t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"demo", "--json", "--database-url", admin, "--demo-database", name,
			"--http", webAddr, "--admin", adminAddr, "--data-dir", dataDir}, pw, &stderr)
		pw.Close()
	}()

	var rep demoReport
	line, err := bufio.NewReader(pr).ReadBytes('\n')
	if err != nil {
		t.Fatalf("demo printed nothing: %v\n%s", err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	if err := json.Unmarshal(line, &rep); err != nil {
		t.Fatalf("demo output %q: %v", line, err)
	}

	t.Run("summary", func(t *testing.T) {
		if rep.Ingested != 3 || rep.Attachments != 5 || rep.Notifications != 3 || rep.Quarantined != 0 {
			t.Errorf("summary %q, want 3 replies, 5 attachments, 3 notifications", rep.Summary)
		}
		if len(rep.Cases) != 3 || rep.Web != "http://"+webAddr+"/" || rep.Database != name {
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

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("demo exited %d after Ctrl-C:\n%s", code, stderr.String())
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("demo still running after its context ended")
	}

	log := stderr.String()
	for _, secret := range []string{rep.TemporaryPassword, rep.StaffPassword, demoMailboxPw, "all values within range", "2026-01-05,121,79"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
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
