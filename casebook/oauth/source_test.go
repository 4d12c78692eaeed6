package oauth_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook/oauth"
	"github.com/casebookhq/casebook/casebook/oauth/oauthtest"
)

// clock is a settable time for a Source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func account(t *testing.T, q url.Values) oauth.Account {
	t.Helper()
	a, err := oauth.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestClientSecretRefreshesBeforeExpiry(t *testing.T) {
	fake := oauthtest.Start(t, oauthtest.Options{Style: oauthtest.Microsoft, ClientID: "app", ClientSecret: "s3cret", Lifetime: time.Hour})
	acct := account(t, url.Values{"oauth": {"microsoft"}, "tenant": {"contoso"}, "client_id": {"app"},
		"client_secret_file": {writeFile(t, "secret", "s3cret\n")}, "token_url": {fake.TokenURL}})
	clk := &clock{t: time.Now()}
	src := oauth.NewSource(acct, oauth.Options{Now: clk.now})
	first, err := src.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Reused while fresh.
	clk.add(40 * time.Minute)
	if tok, err := src.Token(t.Context()); err != nil || tok != first {
		t.Fatalf("token at 40 min: %v, new=%v", err, tok != first)
	}
	// Within five minutes of its expiry it is replaced before anyone is refused.
	clk.add(16 * time.Minute)
	second, err := src.Token(t.Context())
	if err != nil || second == first {
		t.Fatalf("token at 56 min: %v, new=%v", err, second != first)
	}
	if n := fake.Issued(); n != 2 {
		t.Errorf("%d tokens issued, want 2", n)
	}
}

func TestRefreshAfterRefusalIsShared(t *testing.T) {
	fake := oauthtest.Start(t, oauthtest.Options{ClientID: "app", ClientSecret: "s3cret"})
	acct := account(t, url.Values{"oauth": {"generic"}, "client_id": {"app"},
		"client_secret_file": {writeFile(t, "secret", "s3cret")}, "token_url": {fake.TokenURL}})
	src := oauth.NewSource(acct, oauth.Options{})
	old, err := src.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// IMAP and SMTP are both refused the same token: one refresh serves both.
	var wg sync.WaitGroup
	got := make([]string, 2)
	for i := range got {
		wg.Go(func() {
			tok, err := src.Refresh(t.Context(), old)
			if err != nil {
				t.Error(err)
			}
			got[i] = tok
		})
	}
	wg.Wait()
	if got[0] != got[1] || got[0] == old {
		t.Errorf("refreshes gave %q and %q (old %q)", got[0], got[1], old)
	}
	if n := fake.Issued(); n != 2 {
		t.Errorf("%d tokens issued, want 2", n)
	}
}

func TestCertificateAssertion(t *testing.T) {
	good, key := oauthtest.Certificate(t, time.Now().Add(365*24*time.Hour))
	expired, _ := oauthtest.Certificate(t, time.Now().Add(-time.Hour))
	fake := oauthtest.Start(t, oauthtest.Options{Style: oauthtest.Microsoft, ClientID: "app", ClientKey: key})
	tests := []struct {
		name string
		pem  []byte
		err  string
	}{
		{"valid certificate", good, ""},
		{"expired certificate", expired, "expired on"},
		{"no key", good[:strings.Index(string(good), "-----BEGIN PRIVATE KEY")], "no RSA private key"},
		{"not PEM", []byte("hello"), "no CERTIFICATE block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acct := account(t, url.Values{"oauth": {"microsoft"}, "tenant": {"contoso"}, "client_id": {"app"},
				"client_cert_file": {writeFile(t, "cert.pem", string(tt.pem))}, "token_url": {fake.TokenURL}})
			_, err := oauth.NewSource(acct, oauth.Options{}).Token(t.Context())
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestRotatedRefreshTokenIsWrittenBack(t *testing.T) {
	fake := oauthtest.Start(t, oauthtest.Options{ClientID: "c", ClientSecret: "s", Rotate: true, Scope: "https://mail.google.com/"})
	rtFile := writeFile(t, "refresh-token", fake.NewRefreshToken()+"\n")
	acct := account(t, url.Values{"oauth": {"google"}, "client_id": {"c"}, "client_secret_file": {writeFile(t, "secret", "s")},
		"refresh_token_file": {rtFile}, "token_url": {fake.TokenURL}})
	src := oauth.NewSource(acct, oauth.Options{})
	current := ""
	for i := range 3 {
		before, _ := os.ReadFile(rtFile)
		var err error
		if current, err = src.Refresh(t.Context(), current); err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		after, _ := os.ReadFile(rtFile)
		if string(before) == string(after) {
			t.Fatalf("refresh %d: the rotated refresh token was not written back", i)
		}
		st, err := os.Stat(rtFile)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("refresh token file mode %v, %v", st.Mode(), err)
		}
	}
	if g := src.Granted(); len(g) != 1 || g[0] != "https://mail.google.com/" {
		t.Errorf("granted %v", g)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(rtFile), ".refresh-token.*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestRefreshFailuresSayWhatToDo(t *testing.T) {
	tests := []struct {
		name   string
		style  oauthtest.Style
		break_ func(*oauthtest.Server)
		secret string
		want   []string
		again  bool
	}{
		{name: "google consent revoked", style: oauthtest.Google, break_: (*oauthtest.Server).Revoke,
			want: []string{"consent was revoked", "run casebook oauth login again", "Token has been expired or revoked."}, again: true},
		{name: "microsoft grant revoked", style: oauthtest.Microsoft, break_: (*oauthtest.Server).Revoke,
			want: []string{"consent was revoked or the password changed: run casebook oauth login again", "AADSTS50173"}, again: true},
		{name: "microsoft wrong secret", style: oauthtest.Microsoft, secret: "wrong",
			want: []string{"client secret was refused", "AADSTS7000215"}},
		{name: "google wrong secret", style: oauthtest.Google, secret: "wrong",
			want: []string{"the client was refused: check client_id and the secret"}},
		{name: "provider down", style: oauthtest.Google, break_: func(s *oauthtest.Server) { s.FailWith("server_error") },
			want: []string{"the provider is having trouble"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := oauthtest.Start(t, oauthtest.Options{Style: tt.style, ClientID: "c", ClientSecret: "s"})
			rtFile := writeFile(t, "rt", fake.NewRefreshToken())
			acct := account(t, url.Values{"oauth": {"generic"}, "client_id": {"c"}, "client_secret_file": {writeFile(t, "secret", cmpOr(tt.secret, "s"))},
				"refresh_token_file": {rtFile}, "token_url": {fake.TokenURL}})
			clk := &clock{t: time.Now()}
			src := oauth.NewSource(acct, oauth.Options{Now: clk.now})
			if tt.break_ != nil {
				tt.break_(fake)
			}
			_, err := src.Token(t.Context())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if got := errors.Is(err, oauth.ErrLoginAgain); got != tt.again {
				t.Errorf("errors.Is(ErrLoginAgain) = %v", got)
			}
			if src.Ready(t.Context()) == nil {
				t.Error("ready after a failed refresh")
			}
			for _, secret := range []string{"s3cret", "rt-"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a secret", err)
				}
			}
			// The provider is not asked again until the backoff has passed.
			fake.FailWith("")
			if _, err2 := src.Token(t.Context()); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("second try within the backoff: %v", err2)
			}
			if fake.Issued() != 0 {
				t.Error("a token was issued during the backoff")
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestRecoversAfterBackoff(t *testing.T) {
	fake := oauthtest.Start(t, oauthtest.Options{ClientID: "c", ClientSecret: "s"})
	acct := account(t, url.Values{"oauth": {"generic"}, "client_id": {"c"}, "client_secret_file": {writeFile(t, "secret", "s")}, "token_url": {fake.TokenURL}})
	clk := &clock{t: time.Now()}
	src := oauth.NewSource(acct, oauth.Options{Now: clk.now, MinBackoff: time.Second})
	fake.FailWith("temporarily_unavailable")
	if _, err := src.Token(t.Context()); err == nil {
		t.Fatal("no error")
	}
	fake.FailWith("")
	clk.add(1100 * time.Millisecond)
	if _, err := src.Token(t.Context()); err != nil {
		t.Fatalf("after the backoff: %v", err)
	}
	if err := src.Ready(t.Context()); err != nil {
		t.Errorf("not ready after a good refresh: %v", err)
	}
}

func writeBenchFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
