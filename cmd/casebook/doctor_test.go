package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/casebookhq/casebook/bots/slack"
	"github.com/casebookhq/casebook/bots/slack/slacktest"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
	"github.com/casebookhq/casebook/cmd/casebook/demo"
)

func TestDoctorCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	sink, err := demo.StartSMTP(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	tests := []struct {
		name string
		db   string
		smtp string
		code int
		want []string
	}{
		{"working", pgtest.URL(t), "smtp://" + sink.Addr + "?tls=none", 0,
			[]string{"ok    postgres", "ok    clock", "ok    blobs", "ok    smtp      reached none " + sink.Addr}},
		{"database and SMTP down", "postgres://postgres:pw@" + closed + "/casebook?sslmode=disable", "smtp://casebook:pw@" + closed + "?tls=none", 1,
			[]string{"FAIL  postgres  cannot reach PostgreSQL at " + closed, "ok    blobs", "FAIL  smtp      casebook@none " + closed + ": cannot connect"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"doctor", "--database-url", tt.db, "--smtp", tt.smtp, "--data-dir", t.TempDir(), "--admin", ""}, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, stdout.String())
				}
			}
			if strings.Contains(stdout.String()+stderr.String(), ":pw@") {
				t.Errorf("report shows the database password:\n%s", stdout.String())
			}
		})
	}
}

// TestDoctorSlack runs the Slack check from the serve config against the fake Slack
// the bot's own tests use.
func TestDoctorSlack(t *testing.T) {
	fake := slacktest.New()
	defer fake.Close()
	tests := []struct {
		name  string
		scope []string
		code  int
		want  string
	}{
		{"working", slack.BotScopes, 0, "ok    slack     bot casebook in Test, scopes present, Socket Mode token valid"},
		{"missing scope", []string{"chat:write"}, 1, "FAIL  slack     bot casebook in Test lacks scope(s) channels:history"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake.SetScopes(tt.scope, []string{slack.AppScope})
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"doctor", "--database-url", pgtest.URL(t), "--data-dir", t.TempDir(),
				"--slack-bot-token", slacktest.BotToken, "--slack-app-token", slacktest.AppToken, "--slack-api-url", fake.APIURL()}, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String(), tt.want) {
				t.Errorf("exit %d, want %d; report lacks %q:\n%s%s", code, tt.code, tt.want, stdout.String(), stderr.String())
			}
			if strings.Contains(stdout.String()+stderr.String(), slacktest.BotToken) {
				t.Error("the report shows the bot token")
			}
		})
	}
}

// TestDoctorIMAP checks --imap mailboxes as the poller logs in, against the demo's
// in-memory server.
func TestDoctorIMAP(t *testing.T) {
	srv, err := demo.StartIMAP("support@support.example", "pw", []string{"INBOX"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	mailbox := func(pass, folder string) string {
		u := url.URL{Scheme: "imap", User: url.UserPassword(srv.User, pass), Host: srv.Addr, Path: "/" + folder, RawQuery: "tls=none"}
		return u.String()
	}
	tests := []struct {
		name string
		imap string
		code int
		want string
	}{
		{"working", mailbox("pw", "INBOX"), 0, srv.Addr + "/INBOX  logged in, folders present, IDLE supported"},
		{"wrong password", mailbox("nope", "INBOX"), 1, "refused the login: check the user and password"},
		{"missing folder", mailbox("pw", "Support"), 1, "folder(s) Support do not exist"},
		{"bad URL", "imaps://nobody@host/INBOX", 1, "FAIL  imap      --imap: mailbox url: no password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"doctor", "--database-url", pgtest.URL(t), "--data-dir", t.TempDir(), "--imap", tt.imap}, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String(), tt.want) {
				t.Errorf("exit %d, want %d; report lacks %q:\n%s%s", code, tt.code, tt.want, stdout.String(), stderr.String())
			}
			if strings.Contains(stdout.String()+stderr.String(), ":nope@") {
				t.Error("the report shows the mailbox password")
			}
		})
	}
}
