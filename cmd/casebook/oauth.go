package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/casebookhq/casebook/casebook/doctor"
	"github.com/casebookhq/casebook/casebook/oauth"
	"github.com/casebookhq/casebook/casebook/outbox"
	"github.com/casebookhq/casebook/ingest/imap"
)

// oauthSources returns the process's token sources, one per OAuth account, so that a
// mailbox and the SMTP server naming the same account share tokens and refreshes.
func (a *app) oauthSources() *oauth.Sources {
	if a.oauth == nil {
		a.oauth = oauth.NewSources(oauth.Options{Logger: a.log})
	}
	return a.oauth
}

// tokenSource returns the source for the OAuth settings of a URL.
func (a *app) tokenSource(settings url.Values) (*oauth.Source, error) {
	acct, err := oauth.ParseQuery(settings)
	if err != nil {
		return nil, err
	}
	return a.oauthSources().For(acct)
}

// mailbox parses a mailbox URL and gives it its token source when it names an OAuth
// account.
func (a *app) mailbox(raw string) (imap.Mailbox, error) {
	m, err := imap.ParseURL(raw)
	if err != nil {
		return imap.Mailbox{}, err
	}
	if m.OAuth != nil {
		src, err := a.tokenSource(m.OAuth)
		if err != nil {
			return imap.Mailbox{}, fmt.Errorf("%s: %w", m, err)
		}
		m.Tokens = src
	}
	return m, nil
}

// smtpDialer parses --smtp, applies --smtp-password and gives it its token source
// when it names an OAuth account.
func (a *app) smtpDialer() (*outbox.Dialer, error) {
	d, err := outbox.ParseURL(a.cfg.Outbox.SMTP)
	if err != nil {
		return nil, fmt.Errorf("--smtp: %w", err)
	}
	if a.cfg.Outbox.SMTPPassword != "" {
		d.Password = a.cfg.Outbox.SMTPPassword
	}
	if d.OAuth != nil {
		src, err := a.tokenSource(d.OAuth)
		if err != nil {
			return nil, fmt.Errorf("--smtp: %w", err)
		}
		d.Tokens = src
	}
	return d, nil
}

// readyOAuth shows each account's last refresh failure on /readyz: for an account
// only the outbox uses, nothing else would.
func (a *app) readyOAuth() {
	if a.cfg.Admin == "" || a.oauth == nil {
		return
	}
	for _, src := range a.oauth.All() {
		a.ready("oauth "+src.Account().String(), src.Ready)
	}
}

// oauthChecks are doctor's checks of each OAuth account the mailboxes and the SMTP
// server name: a token is obtained, and it carries what IMAP and SMTP need.
func (a *app) oauthChecks() []doctor.Check {
	want := map[*oauth.Source][]string{}
	for _, raw := range a.cfg.IMAP.Mailboxes {
		if m, err := a.mailbox(raw); err == nil && m.OAuth != nil {
			src := m.Tokens.(*oauth.Source)
			want[src] = append(want[src], neededGrants(src.Account(), "imap")...)
		}
	}
	if a.cfg.Outbox.SMTP != "" {
		if d, err := a.smtpDialer(); err == nil && d.OAuth != nil {
			src := d.Tokens.(*oauth.Source)
			want[src] = append(want[src], neededGrants(src.Account(), "smtp")...)
		}
	}
	var checks []doctor.Check
	for _, src := range a.oauthSources().All() {
		acct := src.Account()
		name := string(acct.Provider) + " " + acct.ClientID
		if acct.RefreshTokenFile != "" {
			name += " " + filepath.Base(acct.RefreshTokenFile)
		}
		w := want[src]
		slices.Sort(w)
		checks = append(checks, doctor.OAuth(doctor.OAuthAccount{Name: name, Source: src, Want: slices.Compact(w)}))
	}
	return checks
}

// neededGrants is what a token must allow for IMAP or SMTP: Exchange Online's
// application roles or delegated scopes, or Gmail's one scope. Generic providers'
// scopes are not known.
func neededGrants(acct oauth.Account, use string) []string {
	switch {
	case acct.Provider == oauth.Microsoft && acct.Grant == oauth.ClientCredentials:
		return map[string][]string{"imap": {"IMAP.AccessAsApp"}, "smtp": {"SMTP.SendAsApp"}}[use]
	case acct.Provider == oauth.Microsoft:
		return map[string][]string{"imap": {"IMAP.AccessAsUser.All"}, "smtp": {"SMTP.Send"}}[use]
	case acct.Provider == oauth.Google:
		return []string{"https://mail.google.com/"}
	}
	return nil
}

func oauthLoginCommand() command {
	var provider, clientID, secretFile, rtFile, tenant, scope, tokenURL, deviceURL, authURL, listen string
	var browser bool
	return command{
		usage: "--provider google|microsoft --client-id ID [--client-secret-file FILE] [--refresh-token-file PATH] [--browser [--listen 127.0.0.1:PORT]]",
		help:  "sign a mailbox in once (OAuth 2.0 device grant, or a browser with --browser) and keep its refresh token for IMAP and SMTP",
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.StringVar(&provider, "provider", "", "google, microsoft or generic")
			fs.StringVar(&clientID, "client-id", "", "the app registration's client (application) ID")
			fs.StringVar(&secretFile, "client-secret-file", "", "file holding the client secret (Google needs one)")
			fs.StringVar(&rtFile, "refresh-token-file", "", "where to keep the refresh token, mode 0600 (default: DATA_DIR/oauth/PROVIDER-CLIENT_ID.token)")
			fs.StringVar(&tenant, "tenant", "organizations", "Microsoft: the directory (tenant) ID or domain")
			fs.StringVar(&scope, "scope", "", "space-separated scopes, instead of the provider's for IMAP and SMTP")
			fs.StringVar(&tokenURL, "token-url", "", "advanced: the token endpoint, instead of the provider's (generic providers, tests)")
			fs.StringVar(&deviceURL, "device-url", "", "advanced: the device authorisation endpoint, instead of the provider's")
			fs.BoolVar(&browser, "browser", false, "sign in in a browser on this machine (authorisation code with a loopback redirect): Google's mail scope needs it")
			fs.StringVar(&listen, "listen", "127.0.0.1:0", "with --browser: the loopback address the browser is sent back to (a fixed port for ssh -L)")
			fs.StringVar(&authURL, "auth-url", "", "advanced: the authorisation endpoint, instead of the provider's")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected %q", errUsage, args[0])
			}
			if provider == "" || clientID == "" {
				return fmt.Errorf("%w: --provider and --client-id are required", errUsage)
			}
			if rtFile == "" {
				rtFile = filepath.Join(a.cfg.DataDir, "oauth", provider+"-"+safeName(clientID)+".token")
			}
			q := url.Values{"oauth": {provider}, "client_id": {clientID}, "refresh_token_file": {rtFile}}
			for k, v := range map[string]string{"client_secret_file": secretFile, "scope": scope, "token_url": tokenURL, "device_url": deviceURL, "auth_url": authURL} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if provider == string(oauth.Microsoft) {
				q.Set("tenant", tenant)
			}
			acct, err := oauth.ParseQuery(q)
			if err != nil {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			switch {
			case browser && acct.AuthURL == "":
				return fmt.Errorf("%w: --auth-url is required for a generic provider", errUsage)
			case !browser && acct.DeviceURL == "":
				return fmt.Errorf("%w: --device-url is required for a generic provider", errUsage)
			}
			// With --json stdout carries only the result; the prompt goes to stderr.
			prompt := a.stdout
			if a.cfg.JSON {
				prompt = a.stderr
			}
			var rt string
			var granted []string
			if browser {
				rt, granted, err = oauth.BrowserLogin(ctx, acct, oauth.Options{}, listen, func(signIn string) error {
					_, err := fmt.Fprintf(prompt, "To sign in, open this address in a browser on this machine (from another one, forward the port with ssh -L):\n\n%s\n\nWaiting…\n", signIn)
					return err
				})
			} else {
				rt, granted, err = oauth.Login(ctx, acct, oauth.Options{}, func(c oauth.DeviceCode) error {
					_, err := fmt.Fprintf(prompt, "To sign in, open %s and enter the code %s (valid until %s).\nWaiting…\n",
						c.VerificationURI, c.UserCode, c.Expires.Local().Format(time.Kitchen))
					return err
				})
			}
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(rtFile), 0o700); err != nil {
				return fmt.Errorf("refresh token file: %w", err)
			}
			if err := oauth.WriteRefreshToken(rtFile, rt); err != nil {
				return err
			}
			human := fmt.Sprintf("signed in; refresh token written to %s (mode 0600)\ngranted: %s\nput this in the mailbox and SMTP URLs: auth=xoauth2&%s",
				rtFile, strings.Join(granted, " "), loginQuery(acct))
			return a.print(map[string]any{"provider": acct.Provider, "refresh_token_file": rtFile, "granted": granted, "url_query": "auth=xoauth2&" + loginQuery(acct)}, human)
		},
	}
}

// loginQuery is the URL query naming the account just signed in.
func loginQuery(acct oauth.Account) string {
	q := url.Values{"oauth": {string(acct.Provider)}, "client_id": {acct.ClientID}, "refresh_token_file": {acct.RefreshTokenFile}}
	if acct.Tenant != "" {
		q.Set("tenant", acct.Tenant)
	}
	if acct.ClientSecretFile != "" {
		q.Set("client_secret_file", acct.ClientSecretFile)
	}
	if acct.Provider == oauth.Generic {
		q.Set("token_url", acct.TokenURL)
	}
	return q.Encode()
}

// safeName keeps a client ID usable as a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
