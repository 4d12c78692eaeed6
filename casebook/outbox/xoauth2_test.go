package outbox

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook/oauth"
	"github.com/casebookhq/casebook/casebook/oauth/oauthtest"
	"github.com/casebookhq/casebook/casebook/outbox/smtptest"
)

// oauthSMTP is an SMTP server that takes XOAUTH2 tokens the fake provider issued for
// support@example.com, and a dialer with tokens from that provider.
func oauthSMTP(t *testing.T, style oauthtest.Style) (*Dialer, *oauthtest.Server, *smtptest.Server) {
	t.Helper()
	fake := oauthtest.Start(t, oauthtest.Options{Style: style, ClientID: "casebook", ClientSecret: "s3cret"})
	serverTLS, clientTLS := smtptest.Certificate(t)
	srv := smtptest.Start(t, smtptest.Options{TLS: serverTLS, XOAUTH2: func(user, token string) bool {
		return user == "support@example.com" && fake.Active(token)
	}})
	dir := t.TempDir()
	secret, rt := filepath.Join(dir, "secret"), filepath.Join(dir, "refresh-token")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	os.WriteFile(rt, []byte(fake.NewRefreshToken()), 0o600)
	q := url.Values{"auth": {"xoauth2"}, "oauth": {"generic"}, "client_id": {"casebook"},
		"client_secret_file": {secret}, "refresh_token_file": {rt}, "token_url": {fake.TokenURL}}
	d, err := ParseURL("smtp://support%40example.com@" + srv.Addr + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	acct, err := oauth.ParseQuery(d.OAuth)
	if err != nil {
		t.Fatal(err)
	}
	d.Tokens = oauth.NewSource(acct, oauth.Options{MinBackoff: time.Millisecond})
	d.TLSConfig = clientTLS
	d.Timeout = 10 * time.Second
	return d, fake, srv
}

func TestXOAUTH2Send(t *testing.T) {
	d, fake, srv := oauthSMTP(t, oauthtest.Microsoft)
	c, err := d.Dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send(t.Context(), "support@example.com", "alice@acme.example", []byte("Subject: hi\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	c.close()
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d mails arrived, want 1", n)
	}

	// The server refuses the token (revoked, or expired by its clock): 535, one
	// refresh, and the login goes through on the same connection.
	fake.ExpireAll()
	if err := d.Probe(t.Context()); err != nil {
		t.Fatalf("after the token was refused: %v", err)
	}
	if n := fake.Issued(); n != 2 {
		t.Errorf("%d tokens issued, want 2", n)
	}

	// Consent revoked: the error says what to do, and is a session error the worker
	// retries rather than a failed mail.
	fake.Revoke()
	fake.ExpireAll()
	_, err = d.Dial(t.Context())
	var sess *sessionError
	if err == nil || !errors.As(err, &sess) || !errors.Is(err, oauth.ErrLoginAgain) ||
		!strings.Contains(err.Error(), "run casebook oauth login again") {
		t.Fatalf("error %v", err)
	}
	var staged interface{ Stage() string }
	if !errors.As(err, &staged) || staged.Stage() != "token" {
		t.Errorf("stage of %v", err)
	}
}

// A token kept fresh in a file by something else still works, read at each connection.
func TestXOAUTH2PasswordFile(t *testing.T) {
	serverTLS, clientTLS := smtptest.Certificate(t)
	srv := smtptest.Start(t, smtptest.Options{TLS: serverTLS, XOAUTH2: func(user, token string) bool { return token == "ya29.good" }})
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte("ya29.stale\n"), 0o600)
	d, err := ParseURL("smtp://me%40gmail.com@" + srv.Addr + "?auth=xoauth2&password_file=" + url.QueryEscape(file))
	if err != nil {
		t.Fatal(err)
	}
	d.TLSConfig = clientTLS
	if err := d.Probe(t.Context()); err == nil {
		t.Fatal("a stale token was accepted")
	}
	os.WriteFile(file, []byte("ya29.good\n"), 0o600)
	if err := d.Probe(t.Context()); err != nil {
		t.Fatal(err)
	}
}
