package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Security is how a connection is protected.
type Security string

// The connection security modes, as the mail adapters name them.
const (
	ImplicitTLS Security = "tls"
	StartTLS    Security = "starttls"
	NoTLS       Security = "none"
)

// Mailbox is an IMAP mailbox casebook polls.
type Mailbox struct {
	// Name labels the check, e.g. the mailbox's user and folder.
	Name     string
	Addr     string
	Security Security
	Username string
	Password string
	// Folder is the mailbox polled; Folders are the ones mail is filed into.
	Folder  string
	Folders []string
	// TLSConfig, when set, replaces the system roots (tests use their own CA).
	TLSConfig *tls.Config
	// Login, when set, logs in instead of LOGIN with Username and Password (the
	// poller's own way, which may be XOAUTH2).
	Login func(c *imapclient.Client) error
}

// IMAP connects to the mailbox's server, secures the connection, logs in, and checks
// the folders exist and the server offers IDLE (RFC 2177), without which new mail
// waits for the next poll.
func IMAP(m Mailbox) Check {
	return Check{Name: "imap " + m.Name, Run: func(ctx context.Context) (string, error) {
		c, err := dialIMAP(ctx, m)
		if err != nil {
			return "", err
		}
		defer c.Close()
		// imapclient has no context: closing the connection ends a hung command.
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()

		login := m.Login
		if login == nil {
			login = func(c *imapclient.Client) error { return c.Login(m.Username, m.Password).Wait() }
		}
		if err := login(c); err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) {
				return "", fmt.Errorf("%s refused the login of %q: check the user and password (%s)", m.Addr, m.Username, ie.Text)
			}
			return "", fmt.Errorf("login to %s: %w", m.Addr, err)
		}
		list, err := c.List("", "*", nil).Collect()
		if err != nil {
			return "", fmt.Errorf("list folders on %s: %w", m.Addr, err)
		}
		have := map[string]bool{}
		for _, l := range list {
			have[l.Mailbox] = true
			if strings.EqualFold(l.Mailbox, "INBOX") {
				have["INBOX"] = true
			}
		}
		var missing []string
		for _, f := range append([]string{m.Folder}, m.Folders...) {
			if f != "" && !have[f] {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return "", fmt.Errorf("logged in to %s, but folder(s) %s do not exist: create them or fix the mailbox URL", m.Addr, strings.Join(missing, ", "))
		}
		caps := c.Caps()
		c.Logout().Wait()
		how := map[Security]string{ImplicitTLS: "TLS", StartTLS: "STARTTLS", NoTLS: "no TLS"}[m.Security]
		if !caps.Has(imap.CapIdle) {
			return "", Warning("logged in to %s (%s), folders present, but the server lacks IDLE: new mail waits for the next poll", m.Addr, how)
		}
		return fmt.Sprintf("logged in to %s (%s), folders present, IDLE supported", m.Addr, how), nil
	}}
}

func dialIMAP(ctx context.Context, m Mailbox) (*imapclient.Client, error) {
	host, _, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return nil, fmt.Errorf("imap address %q: %w", m.Addr, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s: is the host and port right, and open from here? (%w)", m.Addr, err)
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if m.TLSConfig != nil {
		cfg = m.TLSConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
	}
	opts := &imapclient.Options{TLSConfig: cfg}
	switch m.Security {
	case ImplicitTLS:
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS with %s failed: is it the implicit-TLS port (993), and is its certificate valid for %s? (%w)", m.Addr, host, err)
		}
		return imapclient.New(tc, opts), nil
	case StartTLS:
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		defer stop()
		c, err := imapclient.NewStartTLS(conn, opts)
		if err != nil {
			return nil, fmt.Errorf("STARTTLS with %s failed: does the server offer it, and is its certificate valid for %s? (%w)", m.Addr, host, err)
		}
		return c, nil
	case NoTLS:
		return imapclient.New(conn, opts), nil
	}
	conn.Close()
	return nil, fmt.Errorf("imap: unknown security %q", m.Security)
}
