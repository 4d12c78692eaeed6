package imap

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		want    Mailbox
		name    string
		secret  string
		wantErr string
	}{
		{url: "imaps://support%40example.com:s3cr%2Ft@mail.example.com/INBOX",
			want: Mailbox{Security: TLS, Addr: "mail.example.com:993", Username: "support@example.com", Name: "INBOX"},
			name: "imaps://support%40example.com@mail.example.com:993/INBOX", secret: "s3cr/t"},
		{url: "imap://u:p@mail.example.com/Support/Inbound",
			want: Mailbox{Security: StartTLS, Addr: "mail.example.com:143", Username: "u", Name: "Support/Inbound"},
			name: "imap://u@mail.example.com:143/Support/Inbound", secret: "p"},
		{url: "imap://u:p@127.0.0.1:1143?tls=none",
			want: Mailbox{Security: Plain, Addr: "127.0.0.1:1143", Username: "u", Name: "INBOX"},
			name: "imap://u@127.0.0.1:1143/INBOX", secret: "p"},
		{url: "imaps://me@gmail.com@imap.gmail.com/INBOX?auth=xoauth2&password_file=TOKEN",
			want: Mailbox{Security: TLS, Auth: AuthXOAUTH2, Addr: "imap.gmail.com:993", Username: "me@gmail.com", Name: "INBOX"},
			name: "imaps://me%40gmail.com@imap.gmail.com:993/INBOX", secret: "ya29.token"},
		{url: "imap://u:p@[::1]:1143/INBOX?tls=none",
			want: Mailbox{Security: Plain, Addr: "[::1]:1143", Username: "u", Name: "INBOX"},
			name: "imap://u@[::1]:1143/INBOX", secret: "p"},
		{url: "imaps://support%40contoso.com@outlook.office365.com/INBOX?auth=xoauth2&oauth=microsoft&tenant=contoso&client_id=app&client_secret_file=/s",
			want: Mailbox{Security: TLS, Auth: AuthXOAUTH2, Addr: "outlook.office365.com:993", Username: "support@contoso.com", Name: "INBOX",
				OAuth: url.Values{"oauth": {"microsoft"}, "tenant": {"contoso"}, "client_id": {"app"}, "client_secret_file": {"/s"}}},
			name: "imaps://support%40contoso.com@outlook.office365.com:993/INBOX"},
		{url: "imaps://u@h/INBOX?oauth=google&client_id=c&refresh_token_file=/rt", wantErr: "go with auth=xoauth2"},
		{url: "imaps://u@h/INBOX?auth=xoauth2&client_id=c", wantErr: "need oauth="},
		{url: "imaps://u:p@h/INBOX?auth=xoauth2&oauth=google&client_id=c", wantErr: "drop the password"},
		{url: "imap://u:p@mail.example.com/INBOX?tls=none", wantErr: "only allowed to a loopback"},
		{url: "imaps://u:p@127.0.0.1/INBOX?tls=none", wantErr: "goes with imap://"},
		{url: "pop3://u:p@mail.example.com/", wantErr: "scheme"},
		{url: "imaps://mail.example.com/", wantErr: "no user"},
		{url: "imaps://u@mail.example.com/", wantErr: "no password"},
		{url: "imaps://u:p@mail.example.com/?password_file=/x", wantErr: "both"},
		{url: "imaps://u:p@mail.example.com/?auth=cram", wantErr: "auth="},
		{url: "imaps://u:p@mail.example.com/?tls=maybe", wantErr: "tls="},
		{url: "imaps://u:p@mail.example.com/?folder=x", wantErr: "unknown parameter"},
		{url: "imaps://u:p@/INBOX", wantErr: "no host"},
	}
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("ya29.token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			m, err := ParseURL(strings.ReplaceAll(tt.url, "TOKEN", token))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), ":p@") {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, m, cmp.FilterPath(func(p cmp.Path) bool {
				return strings.Contains(p.String(), "password")
			}, cmp.Ignore())); diff != "" {
				t.Errorf("mailbox (-want +got):\n%s", diff)
			}
			if m.String() != tt.name {
				t.Errorf("String() = %q, want %q", m.String(), tt.name)
			}
			if s, err := m.secret(); err != nil || s != tt.secret {
				t.Errorf("secret() = %q, %v; want %q", s, err, tt.secret)
			}
		})
	}
}

func FuzzParseURL(f *testing.F) {
	f.Add("imaps://u:p@mail.example.com/INBOX")
	f.Add("imap://u:p@127.0.0.1:1143/INBOX?tls=none")
	f.Add("imaps://u@h/INBOX?auth=xoauth2&password_file=/run/token")
	f.Fuzz(func(t *testing.T, raw string) {
		m, err := ParseURL(raw)
		if err != nil {
			return
		}
		if m.Security == Plain && !strings.HasPrefix(m.Addr, "127.") && !strings.HasPrefix(m.Addr, "[::1]") && !strings.HasPrefix(m.Addr, "localhost:") {
			t.Errorf("plain text to %s", m.Addr)
		}
		if u, err := url.Parse(m.String()); err != nil {
			t.Errorf("String() %q: %v", m.String(), err)
		} else if _, has := u.User.Password(); has {
			t.Errorf("String() %q shows the password", m.String())
		}
		if _, err := ParseURL(m.String() + "?password_file=/x"); err != nil && m.Security != Plain {
			t.Errorf("String() %q does not parse back: %v", m.String(), err)
		}
	})
}
