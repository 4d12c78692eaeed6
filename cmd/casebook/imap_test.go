package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIMAPFlagsFromEnvironment(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.imapFlags(fs)
	env := map[string]string{"CASEBOOK_IMAP": "imaps://a:x@mail.example.com/INBOX  imaps://b:y@mail.example.com/Support", "CASEBOOK_IMAP_POLL_INTERVAL": "30s"}
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	want := []string{"imaps://a:x@mail.example.com/INBOX", "imaps://b:y@mail.example.com/Support"}
	if diff := cmp.Diff(want, c.IMAP.Mailboxes); diff != "" {
		t.Errorf("mailboxes (-want +got):\n%s", diff)
	}
	if c.IMAP.PollInterval.String() != "30s" {
		t.Errorf("poll interval = %v, want 30s", c.IMAP.PollInterval)
	}
}

func TestServeRefusesBadMailboxes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"plain text to a remote host", []string{"--imap", "imap://u:p@mail.example.com/INBOX?tls=none"}, "only allowed to a loopback address"},
		{"no password", []string{"--imap", "imaps://u@mail.example.com/INBOX"}, "no password"},
		{"OAuth without a tenant", []string{"--imap", "imaps://u@outlook.office365.com/INBOX?auth=xoauth2&oauth=microsoft&client_id=c&client_secret_file=/s"}, "microsoft needs tenant="},
		{"OAuth without auth=xoauth2", []string{"--imap", "imaps://u@imap.gmail.com/INBOX?oauth=google&client_id=c&refresh_token_file=/rt"}, "go with auth=xoauth2"},
		{"two accounts on one refresh token file", []string{
			"--imap", "imaps://u@imap.gmail.com/INBOX?auth=xoauth2&oauth=google&client_id=a&refresh_token_file=/rt",
			"--imap", "imaps://v@imap.gmail.com/INBOX?auth=xoauth2&oauth=google&client_id=b&refresh_token_file=/rt"}, "named by two differently configured accounts"},
		{"same mailbox twice", []string{"--imap", "imaps://u:p@mail.example.com/INBOX", "--imap", "imaps://u:q@mail.example.com:993/INBOX"}, "is given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"serve", "--data-dir", t.TempDir()}, tt.args...)
			code := run(context.Background(), args, &stdout, &stderr)
			if code == 0 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want a failure saying %q", code, stderr.String(), tt.want)
			}
			if strings.Contains(stderr.String(), ":p@") || strings.Contains(stderr.String(), ":q@") {
				t.Errorf("stderr shows a password: %s", stderr.String())
			}
		})
	}
}
