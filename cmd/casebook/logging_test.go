package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactAttr(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: redactAttr}))
	log.Info("mistakes",
		"smtp_password", "pw-1",
		slog.Group("slack", "bot_token", "xoxb-2"),
		"url", "imaps://support%40acme.test:pw-3@imap.acme.test:993/INBOX",
		"urls", "postgres://u:pw-4@db/x imaps://a:pw-5@h/",
		"mailbox", "INBOX", "case", "CASE-000001")
	out := buf.String()
	for _, s := range []string{"pw-1", "xoxb-2", "pw-3", "pw-4", "pw-5"} {
		if strings.Contains(out, s) {
			t.Errorf("log shows %q: %s", s, out)
		}
	}
	for _, s := range []string{`"mailbox":"INBOX"`, `"case":"CASE-000001"`, "imap.acme.test:993/INBOX"} {
		if !strings.Contains(out, s) {
			t.Errorf("log lacks %s: %s", s, out)
		}
	}
}

// TestFailingStartLogsNoPassword runs a command against a database that is not there
// and checks the database password shows nowhere in what is printed.
func TestFailingStartLogsNoPassword(t *testing.T) {
	const pw = "Pg-pa55-word"
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"migrate", "--log-level", "debug",
		"--database-url", "postgres://casebook:" + pw + "@127.0.0.1:1/casebook?sslmode=disable&connect_timeout=2"}, &stdout, &stderr)
	if code == 0 {
		t.Fatal("migrate against a closed port succeeded")
	}
	if out := stdout.String() + stderr.String(); strings.Contains(out, pw) || !strings.Contains(out, "127.0.0.1:1") {
		t.Errorf("output: %s", out)
	}
}
