package outbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Security is how a connection to the SMTP server is protected.
type Security string

// The connection security modes.
const (
	// ImplicitTLS speaks TLS from the first byte (smtps://, port 465, RFC 8314).
	ImplicitTLS Security = "tls"
	// StartTLS upgrades a plain connection and refuses a server that does not offer it
	// (smtp://, port 587), so a stripped STARTTLS cannot downgrade us to cleartext.
	StartTLS Security = "starttls"
	// NoTLS is cleartext, allowed only to a loopback address (smtp://…?tls=none).
	NoTLS Security = "none"
)

// Dialer opens authenticated SMTP submission connections.
type Dialer struct {
	// Addr is host:port.
	Addr     string
	Security Security
	Username string
	Password string
	// PasswordFile, when set, holds the password (or XOAUTH2 access token), read at
	// every connection so that a rotated secret is picked up without a restart.
	PasswordFile string
	// XOAUTH2 logs in with SASL XOAUTH2 (Microsoft 365, Gmail) instead of PLAIN or
	// LOGIN, with a token from Tokens, or else the password.
	XOAUTH2 bool
	// OAuth holds the URL's OAuth account settings (oauth=, client_id= … see
	// OAuthKeys) when it names one; whoever builds the worker turns them into Tokens.
	OAuth url.Values
	// Tokens supplies XOAUTH2 access tokens when OAuth is set.
	Tokens TokenSource
	// LocalName is the name sent in EHLO.
	LocalName string
	// TLSConfig, when set, replaces the system roots (tests use their own CA).
	TLSConfig *tls.Config
	// Timeout bounds the dial and each SMTP command.
	Timeout time.Duration
}

// TokenSource hands out OAuth 2.0 access tokens for XOAUTH2.
type TokenSource interface {
	// Token returns an access token that is not about to expire.
	Token(ctx context.Context) (string, error)
	// Refresh returns a new token in place of one the server refused.
	Refresh(ctx context.Context, rejected string) (string, error)
}

// OAuthKeys are the query keys of an OAuth account, the same as in a mailbox URL;
// their values are checked by whoever builds the TokenSource.
var OAuthKeys = []string{"oauth", "tenant", "client_id", "client_secret_file", "client_cert_file", "refresh_token_file", "token_url", "device_url", "scope"}

// ParseURL reads an SMTP server URL:
//
//	smtps://USER:PASS@HOST[:465]      implicit TLS
//	smtp://USER:PASS@HOST[:587]       STARTTLS, required
//	smtp://HOST:PORT?tls=none         cleartext, loopback only (tests, a local relay)
//	smtp://USER@HOST:587?password_file=/run/credentials/smtp
//	smtp://USER@smtp.office365.com:587?auth=xoauth2&oauth=microsoft&tenant=…&client_id=…&client_secret_file=…
//
// User and password are percent-decoded.
func ParseURL(raw string) (*Dialer, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url's error repeats the input, which holds the password.
		return nil, errors.New("smtp url: not a URL like smtps://user:pass@host:465")
	}
	d := &Dialer{Timeout: time.Minute}
	port := ""
	switch u.Scheme {
	case "smtps":
		d.Security, port = ImplicitTLS, "465"
	case "smtp":
		d.Security, port = StartTLS, "587"
	default:
		return nil, fmt.Errorf("smtp url: scheme %q: use smtps:// or smtp://", u.Scheme)
	}
	q := u.Query()
	for k := range q {
		switch {
		case k == "tls" || k == "auth" || k == "password_file":
		case slices.Contains(OAuthKeys, k):
			if d.OAuth == nil {
				d.OAuth = url.Values{}
			}
			d.OAuth[k] = q[k]
		default:
			return nil, fmt.Errorf("smtp url: unknown parameter %q", k)
		}
	}
	switch tlsMode := q.Get("tls"); {
	case tlsMode == "":
	case tlsMode == "none" && u.Scheme == "smtp":
		d.Security = NoTLS
	default:
		return nil, fmt.Errorf("smtp url: tls=%q: only tls=none, with smtp://, is known", tlsMode)
	}
	host := u.Hostname()
	if host == "" {
		return nil, errors.New("smtp url: no host")
	}
	if u.Port() != "" {
		port = u.Port()
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("smtp url: port %q", port)
	}
	d.Addr = net.JoinHostPort(host, port)
	if d.Security == NoTLS && !isLoopback(host) {
		return nil, fmt.Errorf("smtp url: tls=none sends mail and passwords in cleartext: only allowed to a loopback address, not %s", host)
	}
	if u.User != nil {
		d.Username = u.User.Username()
		d.Password, _ = u.User.Password()
	}
	d.PasswordFile = q.Get("password_file")
	switch q.Get("auth") {
	case "", "password":
	case "xoauth2":
		d.XOAUTH2 = true
	default:
		return nil, fmt.Errorf("smtp url: auth=%q: want password or xoauth2", q.Get("auth"))
	}
	switch {
	case d.PasswordFile != "" && d.Password != "":
		return nil, errors.New("smtp url: both a password and password_file")
	case d.OAuth != nil && !d.XOAUTH2:
		return nil, errors.New("smtp url: OAuth settings (oauth=, client_id= …) go with auth=xoauth2")
	case d.OAuth != nil && !d.OAuth.Has("oauth"):
		return nil, errors.New("smtp url: OAuth settings need oauth=microsoft, google or generic")
	case d.OAuth != nil && (d.Password != "" || d.PasswordFile != ""):
		return nil, errors.New("smtp url: oauth= gets its own tokens: drop the password and password_file")
	case d.XOAUTH2 && d.Username == "":
		return nil, errors.New("smtp url: auth=xoauth2 needs the mailbox as the user (smtp://support%40example.com@…)")
	}
	return d, nil
}

// secret returns the password or access token, from PasswordFile when set.
func (d *Dialer) secret() (string, error) {
	if d.PasswordFile == "" {
		return d.Password, nil
	}
	b, err := os.ReadFile(d.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// String describes the server without the password.
func (d *Dialer) String() string {
	s := string(d.Security) + " " + d.Addr
	if d.Username != "" {
		s = d.Username + "@" + s
	}
	return s
}

// conn is one open SMTP session; several mails go over it, one after the other.
type conn struct {
	c   *smtp.Client
	raw net.Conn
	// broken is set when the session cannot carry another mail.
	broken bool
}

// sessionError marks a failure that says nothing about the mail: connecting (dial,
// TLS, EHLO, AUTH) or the server refusing our sender at MAIL FROM, which is about our
// account or configuration (530 authentication required, 550 5.7.1 sender not owned by
// the user). Even a 5xx there is retried with backoff rather than failing the mail, so
// that mail outlives a misconfiguration until someone fixes it.
type sessionError struct {
	stage string
	err   error
}

func (e *sessionError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *sessionError) Unwrap() error { return e.err }

// stageError says which step of opening a session failed, so that `casebook doctor`
// can say what to fix without parsing messages.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// Stage names the step: tls, starttls, ehlo, token (getting an OAuth access token)
// or auth.
func (e *stageError) Stage() string { stage, _, _ := strings.Cut(e.stage, " "); return stage }

// Probe opens a session as the worker does (connect, TLS, EHLO, AUTH) and quits
// without offering a mail: what `casebook doctor` checks.
func (d *Dialer) Probe(ctx context.Context) error {
	c, err := d.dial(ctx)
	if err != nil {
		return err
	}
	c.close()
	return nil
}

// Dial connects, secures the connection as configured and logs in.
func (d *Dialer) Dial(ctx context.Context) (*conn, error) {
	c, err := d.dial(ctx)
	if err != nil {
		return nil, &sessionError{"connect", err}
	}
	return c, nil
}

func (d *Dialer) dial(ctx context.Context) (*conn, error) {
	host, _, _ := net.SplitHostPort(d.Addr)
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if d.TLSConfig != nil {
		cfg = d.TLSConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nd := &net.Dialer{}
	raw, err := nd.DialContext(dctx, "tcp", d.Addr)
	if err != nil {
		return nil, err
	}
	if d.Security == ImplicitTLS {
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, &stageError{"tls", err}
		}
		raw = tc
	}
	// The SMTP client has no context: closing the socket is what interrupts it.
	stop := context.AfterFunc(dctx, func() { raw.Close() })
	defer stop()

	var c *smtp.Client
	if d.Security == StartTLS {
		// NewClientStartTLS refuses a server that does not offer STARTTLS.
		if c, err = smtp.NewClientStartTLS(raw, cfg); err != nil {
			raw.Close()
			return nil, &stageError{"starttls", err}
		}
	} else {
		c = smtp.NewClient(raw)
	}
	c.CommandTimeout = timeout
	c.SubmissionTimeout = 2 * timeout
	local := d.LocalName
	if local == "" {
		local = "localhost"
	}
	if err := c.Hello(local); err != nil {
		c.Close()
		return nil, &stageError{"ehlo", err}
	}
	if d.Username != "" {
		if err := d.auth(ctx, c); err != nil {
			c.Close()
			return nil, err
		}
	}
	return &conn{c: c, raw: raw}, nil
}

// auth logs in with PLAIN or LOGIN, or XOAUTH2. A token refused with 535 is
// refreshed once and tried again: it may have been revoked or expired early.
func (d *Dialer) auth(ctx context.Context, c *smtp.Client) error {
	stage := "auth as " + d.Username
	if d.XOAUTH2 {
		if !c.SupportsAuth("XOAUTH2") {
			return &stageError{"auth", errors.New("server does not offer AUTH XOAUTH2")}
		}
		token, err := d.token(ctx)
		if err != nil {
			return &stageError{"token", err}
		}
		err = c.Auth(&xoauth2{user: d.Username, token: token})
		var se *smtp.SMTPError
		if err != nil && d.Tokens != nil && errors.As(err, &se) && se.Code == 535 {
			if token, err = d.Tokens.Refresh(ctx, token); err != nil {
				return &stageError{"token", err}
			}
			err = c.Auth(&xoauth2{user: d.Username, token: token})
		}
		if err != nil {
			return &stageError{stage, err}
		}
		return nil
	}
	password, err := d.secret()
	if err != nil {
		return &stageError{stage, err}
	}
	var mech sasl.Client
	switch {
	case c.SupportsAuth("PLAIN"):
		mech = sasl.NewPlainClient("", d.Username, password)
	case c.SupportsAuth("LOGIN"):
		mech = sasl.NewLoginClient(d.Username, password)
	default:
		return &stageError{"auth", errors.New("server offers neither AUTH PLAIN nor AUTH LOGIN")}
	}
	if err := c.Auth(mech); err != nil {
		return &stageError{stage, err}
	}
	return nil
}

// token returns the XOAUTH2 access token: from Tokens, or the password or
// password_file when something else keeps it fresh.
func (d *Dialer) token(ctx context.Context) (string, error) {
	if d.OAuth != nil {
		if d.Tokens == nil {
			return "", errors.New("smtp has OAuth settings but no token source")
		}
		return d.Tokens.Token(ctx)
	}
	return d.secret()
}

// xoauth2 is the XOAUTH2 SASL mechanism of Google and Microsoft: the user and an
// OAuth 2.0 bearer token in one initial response.
type xoauth2 struct{ user, token string }

func (a *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + a.user + "\x01auth=Bearer " + a.token + "\x01\x01"), nil
}

// Next answers the server's JSON error challenge with an empty response, after which
// the server sends its final 535.
func (a *xoauth2) Next([]byte) ([]byte, error) { return []byte{}, nil }

// send offers one mail. An *smtp.SMTPError says what the server answered. After any
// other error, or a reply after which RSET fails, the session is marked broken.
func (c *conn) send(ctx context.Context, from, to string, msg []byte) error {
	stop := context.AfterFunc(ctx, func() { c.raw.Close() })
	defer stop()
	err := c.transaction(from, to, msg)
	if err == nil {
		return nil
	}
	var se *smtp.SMTPError
	// Leave the session clean for the next mail (RFC 5321 4.1.1.5).
	if !errors.As(err, &se) || c.c.Reset() != nil {
		c.broken = true
		c.c.Close()
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return err
}

func (c *conn) transaction(from, to string, msg []byte) error {
	if err := c.c.Mail(from, nil); err != nil {
		return &sessionError{"MAIL FROM", err}
	}
	if err := c.c.Rcpt(to, nil); err != nil {
		return fmt.Errorf("RCPT TO: %w", err)
	}
	w, err := c.c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return nil
}

// close says QUIT, or drops the connection when the server does not answer.
func (c *conn) close() {
	if err := c.c.Quit(); err != nil {
		c.c.Close()
	}
}

// smtpReply formats a server reply as it is stored: "550 5.1.1 No such user".
func smtpReply(se *smtp.SMTPError) string {
	s := strconv.Itoa(se.Code)
	if ec := se.EnhancedCode; ec != smtp.NoEnhancedCode && ec != smtp.EnhancedCodeNotSet {
		s += fmt.Sprintf(" %d.%d.%d", ec[0], ec[1], ec[2])
	}
	if se.Message != "" {
		s += " " + se.Message
	}
	return s
}
