package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook/oauth"
	"github.com/casebookhq/casebook/casebook/oauth/oauthtest"
	"github.com/casebookhq/casebook/casebook/outbox/smtptest"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
	"github.com/casebookhq/casebook/casebook/syncbuf"
	"github.com/casebookhq/casebook/ingest/imap/dovecottest"
)

func TestOAuthLogin(t *testing.T) {
	tests := []struct {
		name    string
		style   oauthtest.Style
		answers []string
		code    int
		want    string
	}{
		{"signed in after a wait", oauthtest.Microsoft, []string{"authorization_pending"}, 0, ""},
		{"declined", oauthtest.Google, []string{"access_denied"}, 1, "access was denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := oauthtest.Start(t, oauthtest.Options{Style: tt.style, ClientID: "casebook-app"})
			fake.Device(tt.answers...)
			dir := t.TempDir()
			rtFile := filepath.Join(dir, "m365.token")
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), []string{"oauth", "login", "--provider", "microsoft", "--tenant", "contoso.onmicrosoft.com",
				"--client-id", "casebook-app", "--refresh-token-file", rtFile, "--token-url", fake.TokenURL, "--device-url", fake.DeviceURL,
				"--data-dir", dir, "--json"}, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "enter the code FAKE-CODE") {
				t.Errorf("no prompt: %s", stderr.String())
			}
			if tt.code != 0 {
				if !strings.Contains(stderr.String(), tt.want) {
					t.Errorf("stderr lacks %q: %s", tt.want, stderr.String())
				}
				if _, err := os.Stat(rtFile); err == nil {
					t.Error("a refresh token file was written")
				}
				return
			}
			var res struct {
				File  string `json:"refresh_token_file"`
				Query string `json:"url_query"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res.File != rtFile {
				t.Fatalf("output %s: %v", stdout.String(), err)
			}
			st, err := os.Stat(rtFile)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("refresh token file: %v %v", st, err)
			}
			b, _ := os.ReadFile(rtFile)
			if !strings.HasPrefix(string(b), "rt-") {
				t.Errorf("refresh token file holds %q", b)
			}
			if strings.Contains(stdout.String()+stderr.String(), strings.TrimSpace(string(b))) {
				t.Error("the refresh token was printed")
			}
			q, _ := url.ParseQuery(res.Query)
			if q.Get("auth") != "xoauth2" || q.Get("oauth") != "microsoft" || q.Get("tenant") != "contoso.onmicrosoft.com" || q.Get("refresh_token_file") != rtFile {
				t.Errorf("url_query %q", res.Query)
			}
		})
	}
}

// TestOAuthLoginBrowser signs in through the authorisation code grant, the test
// playing the browser: it opens the printed address, the fake provider consents (or
// declines) and sends it back to casebook's loopback listener, and casebook redeems
// the code with its PKCE verifier and keeps the refresh token.
func TestOAuthLoginBrowser(t *testing.T) {
	for _, tt := range []struct {
		name string
		deny bool
		code int
		want string
	}{
		{"signed in", false, 0, "signed in; refresh token written to"},
		{"declined", true, 1, "access was denied in the browser"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := oauthtest.Start(t, oauthtest.Options{Style: oauthtest.Google, ClientID: "casebook-app", ClientSecret: "s3cret"})
			if tt.deny {
				fake.Deny()
			}
			dir := t.TempDir()
			secret, rtFile := filepath.Join(dir, "secret"), filepath.Join(dir, "google.token")
			os.WriteFile(secret, []byte("s3cret\n"), 0o600)
			var stdout, stderr syncbuf.Buffer
			done := make(chan int, 1)
			go func() {
				done <- run(t.Context(), []string{"oauth", "login", "--provider", "google", "--browser", "--client-id", "casebook-app",
					"--client-secret-file", secret, "--refresh-token-file", rtFile, "--token-url", fake.TokenURL, "--auth-url", fake.AuthURL,
					"--data-dir", dir}, &stdout, &stderr)
			}()
			var signIn string
			for deadline := time.Now().Add(10 * time.Second); signIn == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				for _, line := range strings.Split(stdout.String(), "\n") {
					if strings.HasPrefix(line, fake.AuthURL+"?") {
						signIn = line
					}
				}
			}
			if signIn == "" {
				t.Fatalf("no sign-in address printed: %s %s", stdout.String(), stderr.String())
			}
			u, _ := url.Parse(signIn)
			if q := u.Query(); q.Get("code_challenge_method") != "S256" || q.Get("prompt") != "consent" || q.Get("access_type") != "offline" ||
				q.Get("scope") != "https://mail.google.com/" || !strings.HasPrefix(q.Get("redirect_uri"), "http://127.0.0.1:") {
				t.Errorf("sign-in address %s", signIn)
			}
			// Another page guessing the port gets nothing, and the wait goes on.
			if resp, err := http.Get(u.Query().Get("redirect_uri") + "?code=stolen&state=guess"); err != nil || resp.StatusCode != http.StatusBadRequest {
				t.Errorf("a redirect without the state: %v %v", resp, err)
			}
			resp, err := http.Get(signIn)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var code int
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("casebook oauth login did not return after the browser came back")
			}
			if code != tt.code || !strings.Contains(stdout.String()+stderr.String(), tt.want) {
				t.Fatalf("exit %d, want %d with %q: %s %s", code, tt.code, tt.want, stdout.String(), stderr.String())
			}
			b, err := os.ReadFile(rtFile)
			if tt.deny {
				if err == nil {
					t.Error("a refresh token file was written")
				}
				return
			}
			if err != nil || !strings.HasPrefix(string(b), "rt-") {
				t.Fatalf("refresh token file: %q %v", b, err)
			}
			// The token is one the provider honours.
			fake.ExpireAll()
			if err := oauthRefreshes(t, fake, secret, rtFile); err != nil {
				t.Errorf("the kept refresh token does not refresh: %v", err)
			}
			noSecrets(t, fake, stdout.String()+stderr.String())
		})
	}
}

// oauthRefreshes redeems the refresh token in rtFile at the fake provider.
func oauthRefreshes(t *testing.T, fake *oauthtest.Server, secret, rtFile string) error {
	t.Helper()
	acct, err := oauth.ParseQuery(url.Values{"oauth": {"google"}, "client_id": {"casebook-app"}, "client_secret_file": {secret},
		"refresh_token_file": {rtFile}, "token_url": {fake.TokenURL}})
	if err != nil {
		return err
	}
	src, err := oauth.NewSources(oauth.Options{}).For(acct)
	if err != nil {
		return err
	}
	_, err = src.Token(t.Context())
	return err
}

// oauthMail is a Dovecot and an SMTP server that both take tokens from one fake
// provider, and the mailbox and SMTP URLs of one OAuth account for them.
type oauthMail struct {
	fake       *oauthtest.Server
	dovecot    *dovecottest.Server
	imap, smtp string
}

func startOAuthMail(t *testing.T, opt oauthtest.Options, provider string) oauthMail {
	t.Helper()
	opt.ClientID, opt.ClientSecret, opt.Username = "casebook", "s3cret", "support@example.com"
	fake := oauthtest.Start(t, opt)
	d := dovecottest.StartWith(t, dovecottest.Options{IntrospectionURL: fake.IntrospectURL})
	d.AddUser("support@example.com", "unused-password")
	srv := smtptest.Start(t, smtptest.Options{XOAUTH2: func(user, token string) bool { return user == opt.Username && fake.Active(token) }})
	dir := t.TempDir()
	secret, rt := filepath.Join(dir, "secret"), filepath.Join(dir, "refresh-token")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	os.WriteFile(rt, []byte(fake.NewRefreshToken()+"\n"), 0o600)
	q := url.Values{"tls": {"none"}, "auth": {"xoauth2"}, "oauth": {provider}, "client_id": {"casebook"},
		"client_secret_file": {secret}, "refresh_token_file": {rt}, "token_url": {fake.TokenURL}}
	return oauthMail{fake: fake, dovecot: d,
		imap: "imap://support%40example.com@" + d.Addr() + "/INBOX?" + q.Encode(),
		smtp: "smtp://support%40example.com@" + srv.Addr + "?" + q.Encode()}
}

// noSecrets fails the test when out shows a token the fake issued.
func noSecrets(t *testing.T, fake *oauthtest.Server, out string) {
	t.Helper()
	for _, s := range fake.Secrets() {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("a token reached the output: %s", out)
		}
	}
}

func TestDoctorOAuth(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		scope    string
		breakIt  func(m oauthMail)
		code     int
		want     []string
		// issued is how many tokens the checks used: IMAP and SMTP share one.
		issued int
	}{
		{name: "working", provider: "generic", scope: "mail", code: 0, issued: 1, want: []string{
			"ok    oauth generic casebook refresh-token", "token obtained, grants mail",
			"ok    imap imap://support%40example.com@", "logged in, folders present",
			"ok    smtp", "reached support@example.com@none"}},
		{name: "consent revoked", provider: "generic", code: 1, breakIt: func(m oauthMail) { m.fake.Revoke() }, want: []string{
			"FAIL  oauth generic casebook refresh-token", "consent was revoked or the refresh token expired: run casebook oauth login again",
			"could not get an OAuth access token"}},
		{name: "scope missing", provider: "google", scope: "https://www.googleapis.com/auth/gmail.readonly", code: 1, issued: 1, want: []string{
			"FAIL  oauth google casebook refresh-token", "lacks https://mail.google.com/ (it grants"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := startOAuthMail(t, oauthtest.Options{Style: oauthtest.Google, Scope: tt.scope}, tt.provider)
			if tt.breakIt != nil {
				tt.breakIt(m)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"doctor", "--database-url", pgtest.URL(t), "--data-dir", t.TempDir(),
				"--imap", m.imap, "--smtp", m.smtp}, &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != tt.code {
				t.Errorf("exit %d, want %d:\n%s", code, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("report lacks %q:\n%s", w, out)
				}
			}
			if n := m.fake.Issued(); n != tt.issued {
				t.Errorf("%d tokens issued, want %d", n, tt.issued)
			}
			noSecrets(t, m.fake, out)
		})
	}
}

// TestServeOAuthLogs runs `casebook serve` on an OAuth mailbox through a revoked
// consent: the log says what to do, and no token reaches it.
func TestServeOAuthLogs(t *testing.T) {
	c := newCLI(t)
	c.json("migrate")
	m := startOAuthMail(t, oauthtest.Options{Style: oauthtest.Microsoft, Lifetime: time.Hour}, "generic")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := &syncbuf.Buffer{}
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"serve", "--database-url", c.url, "--data-dir", c.dir, "--admin", "", "--http", "", "--log-level", "debug",
			"--imap", m.imap}, &bytes.Buffer{}, logs)
	}()
	waitLog := func(what string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(logs.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("log lacks %q:\n%s", what, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitLog("mailbox lock taken")
	for m.fake.Issued() == 0 {
		time.Sleep(50 * time.Millisecond)
	}
	m.fake.Revoke()
	m.fake.ExpireAll()
	m.dovecot.Kick("support@example.com")
	waitLog("consent was revoked or the password changed: run casebook oauth login again")
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve: exit %d", code)
	}
	noSecrets(t, m.fake, logs.String())
}
