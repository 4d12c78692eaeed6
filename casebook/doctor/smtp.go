package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPServer is the submission server casebook sends through.
type SMTPServer struct {
	Addr     string
	Security Security
	Username string
	Password string
	// LocalName is the name sent in EHLO.
	LocalName string
	// TLSConfig, when set, replaces the system roots (tests use their own CA).
	TLSConfig *tls.Config
}

// SMTP connects, secures the connection (refusing a server that does not offer
// STARTTLS when it is required) and logs in, then quits without offering a mail.
func SMTP(s SMTPServer) Check {
	return Check{Name: "smtp", Run: func(ctx context.Context) (string, error) {
		host, _, err := net.SplitHostPort(s.Addr)
		if err != nil {
			return "", fmt.Errorf("smtp address %q: %w", s.Addr, err)
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			return "", fmt.Errorf("cannot connect to %s: is the host and port right, and open from here? (%w)", s.Addr, err)
		}
		// go-smtp has no context: closing the connection ends a hung command.
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		defer stop()
		cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if s.TLSConfig != nil {
			cfg = s.TLSConfig.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName = host
			}
		}
		var c *smtp.Client
		how := "no TLS"
		switch s.Security {
		case ImplicitTLS:
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return "", fmt.Errorf("TLS with %s failed: is it the implicit-TLS port (465), and is its certificate valid for %s? (%w)", s.Addr, host, err)
			}
			c, how = smtp.NewClient(tc), "TLS"
		case StartTLS:
			c, err = smtp.NewClientStartTLS(conn, cfg)
			if err != nil {
				conn.Close()
				return "", fmt.Errorf("STARTTLS with %s failed: does the server offer it (port 587), and is its certificate valid for %s? (%w)", s.Addr, host, err)
			}
			how = "STARTTLS"
		case NoTLS:
			c = smtp.NewClient(conn)
		default:
			conn.Close()
			return "", fmt.Errorf("smtp: unknown security %q", s.Security)
		}
		defer c.Close()
		local := s.LocalName
		if local == "" {
			local = "localhost"
		}
		if err := c.Hello(local); err != nil {
			return "", fmt.Errorf("%s did not accept EHLO: %w", s.Addr, err)
		}
		if s.Username == "" {
			c.Quit()
			return fmt.Sprintf("connected to %s (%s), no login configured", s.Addr, how), nil
		}
		var auth sasl.Client
		switch {
		case c.SupportsAuth(sasl.Plain):
			auth = sasl.NewPlainClient("", s.Username, s.Password)
		case c.SupportsAuth(sasl.Login):
			auth = sasl.NewLoginClient(s.Username, s.Password)
		default:
			return "", fmt.Errorf("%s offers neither AUTH PLAIN nor LOGIN here (%s): use the submission port with TLS", s.Addr, how)
		}
		if err := c.Auth(auth); err != nil {
			var se *smtp.SMTPError
			if errors.As(err, &se) {
				return "", fmt.Errorf("%s refused the login of %q: check the user and password (%d %s)", s.Addr, s.Username, se.Code, se.Message)
			}
			return "", fmt.Errorf("login to %s: %w", s.Addr, err)
		}
		c.Quit()
		return fmt.Sprintf("logged in to %s as %s (%s); no mail sent", s.Addr, s.Username, how), nil
	}}
}
