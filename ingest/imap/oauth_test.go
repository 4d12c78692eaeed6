package imap_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook/oauth"
	"github.com/casebookhq/casebook/casebook/oauth/oauthtest"
	cbimap "github.com/casebookhq/casebook/ingest/imap"
	"github.com/casebookhq/casebook/ingest/imap/dovecottest"
)

// oauthDovecot is a Dovecot whose XOAUTH2 logins are checked against a fake provider
// by token introspection, and a mailbox of alice's that logs in with tokens from it.
func oauthDovecot(t *testing.T, opt oauthtest.Options) (*dovecot, *oauthtest.Server, cbimap.Mailbox, *oauth.Source, string) {
	t.Helper()
	opt.ClientID, opt.ClientSecret, opt.Username = "casebook", "s3cret", "alice"
	fake := oauthtest.Start(t, opt)
	d := startDovecotWith(t, dovecottest.Options{IntrospectionURL: fake.IntrospectURL})
	dir := t.TempDir()
	secret, rt := filepath.Join(dir, "secret"), filepath.Join(dir, "refresh-token")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	os.WriteFile(rt, []byte(fake.NewRefreshToken()+"\n"), 0o600)
	q := url.Values{"tls": {"none"}, "auth": {"xoauth2"}, "oauth": {"generic"}, "client_id": {"casebook"},
		"client_secret_file": {secret}, "refresh_token_file": {rt}, "token_url": {fake.TokenURL}}
	mb, err := cbimap.ParseURL("imap://alice@" + d.Addr() + "/INBOX?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	acct, err := oauth.ParseQuery(mb.OAuth)
	if err != nil {
		t.Fatal(err)
	}
	src := oauth.NewSource(acct, oauth.Options{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	mb.Tokens = src
	return d, fake, mb, src, rt
}

// The poller logs in with a token, the token expires while it works, and it
// refreshes and goes on: each mail is stored once and none is lost.
func TestOAuthTokenExpiresMidRun(t *testing.T) {
	e := newEnv(t)
	// Dovecot delays logins after a failure by seconds: tokens must outlive that.
	d, fake, mb, _, _ := oauthDovecot(t, oauthtest.Options{Lifetime: 15 * time.Second, Rotate: true})
	d.append(t, "INBOX", e.reply("o1", 1<<10))
	p, _ := e.startMailbox(t, mb, nil)
	waitFolders(t, d, map[string]uint32{"INBOX": 0, "Casebook/Processed": 1})

	// The token runs out while the session is open; mail keeps coming over it.
	first := fake.Issued()
	eventually(t, "the first token expires", func() (bool, string) {
		time.Sleep(200 * time.Millisecond)
		return fake.Issued() == first && fake.ActiveCount() == 0, "active"
	})
	d.append(t, "INBOX", e.reply("o2", 0))
	waitFolders(t, d, map[string]uint32{"INBOX": 0, "Casebook/Processed": 2})

	// A new session needs a new token: the expired one is refreshed before login.
	d.Kick("alice")
	d.append(t, "INBOX", e.reply("o3", 0))
	waitFolders(t, d, map[string]uint32{"INBOX": 0, "Casebook/Processed": 3})
	if n := fake.Issued(); n != 2 {
		t.Errorf("%d tokens issued, want 2", n)
	}

	// The server stops taking a token the poller thinks good (revoked, or expired by
	// the server's clock): the refused login refreshes once and succeeds.
	fake.ExpireAll()
	d.Kick("alice")
	d.append(t, "INBOX", e.reply("o4", 0))
	waitFolders(t, d, map[string]uint32{"INBOX": 0, "Casebook/Processed": 4})
	if n := fake.Issued(); n != 3 {
		t.Errorf("%d tokens issued, want 3", n)
	}
	if u, f := e.updates(t); u != 4 || f != 1 {
		t.Errorf("updates, files = %d, %d; want 4, 1 (nothing lost, nothing twice)", u, f)
	}
	if err := p.Ready(t.Context()); err != nil {
		t.Errorf("not ready: %v", err)
	}
}

// Revoked consent shows in readiness in words that say what to do, and the poller
// comes back by itself once someone has logged in again.
func TestOAuthConsentRevoked(t *testing.T) {
	e := newEnv(t)
	d, fake, mb, src, rtFile := oauthDovecot(t, oauthtest.Options{Style: oauthtest.Google, Lifetime: time.Hour})
	p, _ := e.startMailbox(t, mb, nil)
	eventually(t, "logged in", func() (bool, string) { return fake.Issued() == 1 && p.Ready(t.Context()) == nil, "not yet" })

	fake.Revoke()
	fake.ExpireAll()
	d.Kick("alice")
	eventually(t, "readiness names the cause", func() (bool, string) {
		err := p.Ready(t.Context())
		return err != nil && strings.Contains(err.Error(), "consent was revoked or the refresh token expired: run casebook oauth login again"), "ready"
	})
	if err := src.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "Token has been expired or revoked.") {
		t.Errorf("source readiness %v lacks the provider's words", err)
	}

	// `casebook oauth login` writes a new refresh token; the next refresh reads it.
	if err := oauth.WriteRefreshToken(rtFile, fake.NewRefreshToken()); err != nil {
		t.Fatal(err)
	}
	d.append(t, "INBOX", e.reply("o5", 0))
	waitFolders(t, d, map[string]uint32{"INBOX": 0, "Casebook/Processed": 1})
	eventually(t, "ready again", func() (bool, string) { return p.Ready(t.Context()) == nil, "not ready" })
}
