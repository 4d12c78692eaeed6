package outbox

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook/outbox/smtptest"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		want    Dialer
		wantErr string
	}{
		{url: "smtps://user:p%40ss@mail.example.com", want: Dialer{Addr: "mail.example.com:465", Security: ImplicitTLS, Username: "user", Password: "p@ss"}},
		{url: "smtps://user:pass@mail.example.com:2465", want: Dialer{Addr: "mail.example.com:2465", Security: ImplicitTLS, Username: "user", Password: "pass"}},
		{url: "smtp://apikey:secret@smtp.example.com", want: Dialer{Addr: "smtp.example.com:587", Security: StartTLS, Username: "apikey", Password: "secret"}},
		{url: "smtp://relay.example.com:25", want: Dialer{Addr: "relay.example.com:25", Security: StartTLS}},
		{url: "smtp://127.0.0.1:2525?tls=none", want: Dialer{Addr: "127.0.0.1:2525", Security: NoTLS}},
		{url: "smtp://localhost:25?tls=none", want: Dialer{Addr: "localhost:25", Security: NoTLS}},
		{url: "smtp://[::1]:25?tls=none", want: Dialer{Addr: "[::1]:25", Security: NoTLS}},
		{url: "smtp://mail.example.com:25?tls=none", wantErr: "only allowed to a loopback address"},
		{url: "smtps://127.0.0.1?tls=none", wantErr: "tls="},
		{url: "smtp://mail.example.com?tls=maybe", wantErr: "tls="},
		{url: "smtp://mail.example.com?auth=cram", wantErr: "auth="},
		{url: "smtp://mail.example.com?folder=x", wantErr: "unknown parameter"},
		{url: "smtp://u@mail.example.com?password_file=/run/p", want: Dialer{Addr: "mail.example.com:587", Security: StartTLS, Username: "u", PasswordFile: "/run/p"}},
		{url: "smtp://support%40contoso.com@smtp.office365.com?auth=xoauth2&oauth=microsoft&tenant=contoso&client_id=app&client_cert_file=/c.pem",
			want: Dialer{Addr: "smtp.office365.com:587", Security: StartTLS, Username: "support@contoso.com", XOAUTH2: true,
				OAuth: url.Values{"oauth": {"microsoft"}, "tenant": {"contoso"}, "client_id": {"app"}, "client_cert_file": {"/c.pem"}}}},
		{url: "smtp://u:secret@mail.example.com?password_file=/run/p", wantErr: "both a password and password_file"},
		{url: "smtp://u@mail.example.com?oauth=google&client_id=c", wantErr: "go with auth=xoauth2"},
		{url: "smtp://u@mail.example.com?auth=xoauth2&client_id=c", wantErr: "need oauth="},
		{url: "smtp://u:secret@mail.example.com?auth=xoauth2&oauth=google&client_id=c", wantErr: "drop the password"},
		{url: "smtp://mail.example.com?auth=xoauth2&oauth=google&client_id=c", wantErr: "needs the mailbox as the user"},
		{url: "http://mail.example.com", wantErr: "scheme"},
		{url: "smtp://", wantErr: "no host"},
		{url: "smtp://mail.example.com:99999", wantErr: "port"},
		{url: "smtps://user:secret@bad host:465", wantErr: "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			d, err := ParseURL(tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Timeout = d.Timeout
			if diff := cmp.Diff(tt.want, *d); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if strings.Contains(d.String(), tt.want.Password+"@") && tt.want.Password != "" {
				t.Errorf("String() = %q shows the password", d.String())
			}
		})
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"smtps://u:p@h:465", "smtp://h?tls=none", "smtp://[::1]:25?tls=none", "smtp://u:p%zz@h", "smtp://h:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseURL(s)
		if err != nil {
			return
		}
		if d.Security == NoTLS && !strings.Contains(s, "tls=none") {
			t.Fatalf("%q parsed as cleartext", s)
		}
		if d.Addr == "" || d.Security == "" {
			t.Fatalf("%q parsed to %+v", s, d)
		}
	})
}

// TestTLSAndAuth sends through each way of connecting to a submission server.
func TestTLSAndAuth(t *testing.T) {
	serverTLS, clientTLS := smtptest.Certificate(t)
	users := map[string]string{"casebook": "s3cret"}
	tests := []struct {
		name    string
		opt     smtptest.Options
		url     string
		wantErr string
	}{
		{"implicit TLS, AUTH PLAIN", smtptest.Options{TLS: serverTLS, ImplicitTLS: true, Users: users}, "smtps://casebook:s3cret@%s", ""},
		{"STARTTLS, AUTH PLAIN", smtptest.Options{TLS: serverTLS, Users: users}, "smtp://casebook:s3cret@%s", ""},
		{"STARTTLS, AUTH LOGIN only", smtptest.Options{TLS: serverTLS, Users: users, Mechanisms: []string{"LOGIN"}}, "smtp://casebook:s3cret@%s", ""},
		{"cleartext to loopback", smtptest.Options{}, "smtp://%s?tls=none", ""},
		{"STARTTLS required but not offered", smtptest.Options{}, "smtp://%s", "STARTTLS"},
		{"wrong password", smtptest.Options{TLS: serverTLS, Users: users}, "smtp://casebook:wrong@%s", "auth as casebook"},
		{"untrusted certificate", smtptest.Options{TLS: serverTLS, ImplicitTLS: true}, "smtps://%s", "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.opt)
			d, err := ParseURL(strings.Replace(tt.url, "%s", srv.Addr, 1))
			if err != nil {
				t.Fatal(err)
			}
			if tt.name != "untrusted certificate" {
				d.TLSConfig = clientTLS
			}
			c, err := d.Dial(t.Context())
			if tt.wantErr != "" {
				var ce *sessionError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &ce) {
					t.Fatalf("Dial = %v, want a connect error about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			for _, to := range []string{"a@example.com", "b@example.com"} {
				if err := c.send(t.Context(), "support@casebook.test", to, []byte("Subject: hi\r\n\r\nhello\r\n")); err != nil {
					t.Fatal(err)
				}
			}
			// A refused mail leaves the session usable for the next.
			srv.SetReply(func(m smtptest.Message) error {
				if m.To[0] == "c@example.com" {
					return &smtp.SMTPError{Code: 550, Message: "no"}
				}
				return nil
			})
			var se *smtp.SMTPError
			if err := c.send(t.Context(), "support@casebook.test", "c@example.com", []byte("Subject: hi\r\n\r\nhello\r\n")); !errors.As(err, &se) || se.Code != 550 || c.broken {
				t.Fatalf("send = %v (broken %v), want 550 on a live session", err, c.broken)
			}
			if err := c.send(t.Context(), "support@casebook.test", "d@example.com", []byte("Subject: hi\r\n\r\nhello\r\n")); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range srv.Messages() {
				got = append(got, m.To...)
			}
			if diff := cmp.Diff([]string{"a@example.com", "b@example.com", "d@example.com"}, got); diff != "" {
				t.Errorf("delivered (-want +got):\n%s", diff)
			}
		})
	}
}
