package imap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
)

// Security says how a connection is protected.
type Security int

// The ways to connect.
const (
	// TLS is implicit TLS from the first byte (imaps://, port 993).
	TLS Security = iota
	// StartTLS upgrades a plain connection and refuses a server without STARTTLS
	// (imap://, port 143), so a stripped capability cannot downgrade the session.
	StartTLS
	// Plain sends everything in the clear; only allowed to a loopback address.
	Plain
)

// Auth is how the poller logs in.
type Auth int

// The login methods.
const (
	// AuthPassword uses LOGIN with a password.
	AuthPassword Auth = iota
	// AuthXOAUTH2 uses SASL XOAUTH2 with an OAuth 2.0 access token (Gmail, Microsoft 365).
	AuthXOAUTH2
)

// Mailbox is a parsed mailbox URL:
//
//	imaps://USER:PASS@HOST[:993]/INBOX
//	imap://USER@HOST[:143]/INBOX?password_file=/run/secrets/imap   (STARTTLS required)
//	imaps://USER@HOST/INBOX?auth=xoauth2&password_file=/run/token  (access token)
//	imap://USER:PASS@127.0.0.1:1143/INBOX?tls=none                 (loopback only)
//	imaps://USER@HOST/INBOX?auth=xoauth2&oauth=microsoft&tenant=…&client_id=…&client_secret_file=…
type Mailbox struct {
	Security Security
	Auth     Auth
	// Addr is host:port.
	Addr     string
	Username string
	// Name is the mailbox to watch, INBOX by default.
	Name string
	// OAuth holds the URL's OAuth account settings (oauth=, client_id= … see
	// OAuthKeys) when it names one; whoever builds the poller turns them into Tokens.
	OAuth url.Values
	// Tokens supplies XOAUTH2 access tokens when OAuth is set.
	Tokens TokenSource

	password     string
	passwordFile string
}

// TokenSource hands out OAuth 2.0 access tokens for XOAUTH2.
type TokenSource interface {
	// Token returns an access token that is not about to expire.
	Token(ctx context.Context) (string, error)
	// Refresh returns a new token in place of one the server refused.
	Refresh(ctx context.Context, rejected string) (string, error)
}

// OAuthKeys are the query keys of an OAuth account, the same in the SMTP URL; their
// values are checked by whoever builds the TokenSource.
var OAuthKeys = []string{"oauth", "tenant", "client_id", "client_secret_file", "client_cert_file", "refresh_token_file", "token_url", "device_url", "scope"}

// ParseURL parses a mailbox URL. The secret comes from the URL's password or from the
// file named by password_file, read at every login so that a rotated password or a
// refreshed access token is picked up without a restart.
func ParseURL(raw string) (Mailbox, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the input, which holds the password.
		return Mailbox{}, errors.New("mailbox url: cannot parse")
	}
	var m Mailbox
	port := ""
	switch u.Scheme {
	case "imaps":
		m.Security, port = TLS, "993"
	case "imap":
		m.Security, port = StartTLS, "143"
	default:
		return Mailbox{}, fmt.Errorf("mailbox url: scheme %q: want imaps or imap", u.Scheme)
	}
	if u.Hostname() == "" {
		return Mailbox{}, errors.New("mailbox url: no host")
	}
	if !validHost(u.Hostname()) {
		return Mailbox{}, fmt.Errorf("mailbox url: host %q is neither an IP address nor a host name", u.Hostname())
	}
	if u.Port() != "" {
		port = u.Port()
	}
	m.Addr = net.JoinHostPort(u.Hostname(), port)
	if u.User == nil || u.User.Username() == "" {
		return Mailbox{}, errors.New("mailbox url: no user")
	}
	m.Username = u.User.Username()
	m.password, _ = u.User.Password()
	m.Name = strings.TrimPrefix(u.Path, "/")
	if m.Name == "" {
		m.Name = "INBOX"
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "tls", "auth", "password_file":
		default:
			if slices.Contains(OAuthKeys, k) {
				if m.OAuth == nil {
					m.OAuth = url.Values{}
				}
				m.OAuth[k] = q[k]
				continue
			}
			return Mailbox{}, fmt.Errorf("mailbox url: unknown parameter %q", k)
		}
	}
	switch q.Get("tls") {
	case "":
	case "none":
		if m.Security != StartTLS {
			return Mailbox{}, errors.New("mailbox url: tls=none goes with imap://, not imaps://")
		}
		if !isLoopback(u.Hostname()) {
			return Mailbox{}, fmt.Errorf("mailbox url: tls=none is only allowed to a loopback address, not %s", u.Hostname())
		}
		m.Security = Plain
	default:
		return Mailbox{}, fmt.Errorf("mailbox url: tls=%q: the only value is none", q.Get("tls"))
	}
	switch q.Get("auth") {
	case "", "password":
	case "xoauth2":
		m.Auth = AuthXOAUTH2
	default:
		return Mailbox{}, fmt.Errorf("mailbox url: auth=%q: want password or xoauth2", q.Get("auth"))
	}
	m.passwordFile = q.Get("password_file")
	if m.OAuth != nil {
		switch {
		case m.Auth != AuthXOAUTH2:
			return Mailbox{}, errors.New("mailbox url: OAuth settings (oauth=, client_id= …) go with auth=xoauth2")
		case !m.OAuth.Has("oauth"):
			return Mailbox{}, errors.New("mailbox url: OAuth settings need oauth=microsoft, google or generic")
		case m.password != "" || m.passwordFile != "":
			return Mailbox{}, errors.New("mailbox url: oauth= gets its own tokens: drop the password and password_file")
		}
		return m, nil
	}
	switch {
	case m.passwordFile != "" && m.password != "":
		return Mailbox{}, errors.New("mailbox url: both a password and password_file")
	case m.passwordFile == "" && m.password == "":
		return Mailbox{}, errors.New("mailbox url: no password (put it in the URL or name a password_file)")
	}
	return m, nil
}

func validHost(host string) bool {
	if net.ParseIP(host) != nil {
		return true
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// secret returns the password or access token.
func (m Mailbox) secret() (string, error) {
	if m.passwordFile == "" {
		return m.password, nil
	}
	b, err := os.ReadFile(m.passwordFile)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("password file %s is empty", m.passwordFile)
	}
	return s, nil
}

// token returns the XOAUTH2 access token: from Tokens, or from the password or
// password_file when something else keeps it fresh.
func (m Mailbox) token(ctx context.Context) (string, error) {
	if m.OAuth != nil {
		if m.Tokens == nil {
			return "", errors.New("mailbox has OAuth settings but no token source")
		}
		return m.Tokens.Token(ctx)
	}
	return m.secret()
}

// String names the mailbox without its secret, as logs and checkpoints know it.
func (m Mailbox) String() string {
	scheme := "imaps"
	if m.Security != TLS {
		scheme = "imap"
	}
	u := url.URL{Scheme: scheme, User: url.User(m.Username), Host: m.Addr, Path: "/" + m.Name}
	return u.String()
}
