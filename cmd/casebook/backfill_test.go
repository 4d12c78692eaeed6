package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
	"github.com/casebookhq/casebook/cmd/casebook/demo"
	"github.com/casebookhq/casebook/ingest/imap"
)

// TestIngestMailbox runs `casebook ingest --mailbox` over a mailbox holding replies
// from before and after --since, twice: the first run adds what is new since the date
// with plain progress lines (stderr is not a terminal), the second finds it done.
func TestIngestMailbox(t *testing.T) {
	ctx := context.Background()
	db := pgtest.URL(t)
	st, err := postgres.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cases := seedCases(t, st, 3)

	srv, err := demo.StartIMAP("support@support.example", "pw", []string{"INBOX", "Archive"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	from, to := &mail.Address{Address: "alice@acme.example"}, &mail.Address{Address: "support@support.example"}
	dates := []time.Time{time.Date(2025, 11, 3, 9, 0, 0, 0, time.UTC), time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), time.Date(2026, 2, 9, 9, 0, 0, 0, time.UTC)}
	for i, r := range demo.Replies(cases) {
		raw, err := demo.Compose(r, from, to, dates[i], "<backfill-"+r.Case.Ref+"@acme.example>")
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Append("Archive", demo.Stamp(raw, "acme.example"), dates[i]); err != nil {
			t.Fatal(err)
		}
	}
	account := url.URL{Scheme: "imap", User: url.UserPassword(srv.User, srv.Password), Host: srv.Addr, Path: "/INBOX", RawQuery: "tls=none"}
	args := []string{"ingest", "--mailbox", "Archive", "--since", "2026-01-01", "--imap", account.String(),
		"--database-url", db, "--data-dir", t.TempDir(), "--imap-spool-dir", t.TempDir(), "--trusted-authserv-id", demo.AuthservID}

	var stdout, stderr bytes.Buffer
	if code := run(ctx, args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "2 messages since 2026-01-01, 0 done before; 2 added or already there, 0 quarantined") {
		t.Errorf("first run printed %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), "/Archive: 2/2 messages") {
		t.Errorf("no plain progress line in stderr:\n%s", stderr.String())
	}
	act, err := st.ActivityOf(ctx, "email", "owner_notification")
	if err != nil {
		t.Fatal(err)
	}
	if act.Updates != 2 || act.Attachments != 3 {
		t.Errorf("%d updates with %d files, want 2 with 3 (the 2025 reply left alone)", act.Updates, act.Attachments)
	}

	stdout.Reset()
	stderr.Reset()
	if code := run(ctx, append(args, "--json"), &stdout, &stderr); code != 0 {
		t.Fatalf("rerun: exit %d: %s", code, stderr.String())
	}
	var prog imap.BackfillProgress
	if err := json.Unmarshal(stdout.Bytes(), &prog); err != nil {
		t.Fatalf("rerun printed %q: %v", stdout.String(), err)
	}
	if want := (imap.BackfillProgress{Total: 2, Done: 2, Skipped: 2}); prog != want {
		t.Errorf("rerun: %+v, want %+v", prog, want)
	}
	if n, err := srv.Count("Archive"); err != nil || n != 3 {
		t.Errorf("Archive holds %d messages (%v), want the 3 it had", n, err)
	}
}

func TestIngestMailboxUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no account", []string{"--mailbox", "Archive"}, "needs the account"},
		{"bad date", []string{"--mailbox", "imap://a:b@127.0.0.1:1/X?tls=none", "--since", "1/2/2026"}, "want a day like 2026-01-01"},
		{"dry run", []string{"--mailbox", "imap://a:b@127.0.0.1:1/X?tls=none", "--dry-run"}, "--dry-run is for .eml files"},
		{"files too", []string{"--mailbox", "imap://a:b@127.0.0.1:1/X?tls=none", "x.eml"}, "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"ingest"}, tt.args...), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q, want 2 and %q", code, stderr.String(), tt.want)
			}
		})
	}
}
