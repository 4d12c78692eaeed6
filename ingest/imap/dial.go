package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/casebookhq/casebook/ingest"
)

const dialTimeout = 30 * time.Second

// dial connects and logs in. wake receives a value (without blocking) whenever the
// server reports a new message count.
func (p *Poller) dial(ctx context.Context, wake chan<- struct{}) (*imapclient.Client, error) {
	m := p.cfg.Mailbox
	opts := &imapclient.Options{
		TLSConfig: p.cfg.TLSConfig,
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			// This runs on the client's reader goroutine: never block here.
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	host, _, _ := net.SplitHostPort(m.Addr)
	if opts.TLSConfig == nil {
		opts.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	} else if opts.TLSConfig.ServerName == "" {
		// Verify the certificate against the host dialled, as tls.Dial would.
		opts.TLSConfig = opts.TLSConfig.Clone()
		opts.TLSConfig.ServerName = host
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var (
		c     *imapclient.Client
		err   error
		stage = "connect"
	)
	switch m.Security {
	case TLS:
		var conn net.Conn
		conn, err = (&net.Dialer{}).DialContext(dctx, "tcp", m.Addr)
		if err == nil {
			stage = "tls"
			tc := tls.Client(conn, opts.TLSConfig)
			if err = tc.HandshakeContext(dctx); err != nil {
				conn.Close()
			} else {
				c = imapclient.New(tc, opts)
			}
		}
	case StartTLS:
		var conn net.Conn
		conn, err = (&net.Dialer{}).DialContext(dctx, "tcp", m.Addr)
		if err == nil {
			stage = "starttls"
			// NewStartTLS fails when the server refuses STARTTLS: no silent downgrade.
			c, err = imapclient.NewStartTLS(conn, opts)
			if err != nil {
				conn.Close()
			}
		}
	case Plain:
		var conn net.Conn
		conn, err = (&net.Dialer{}).DialContext(dctx, "tcp", m.Addr)
		if err == nil {
			c = imapclient.New(conn, opts)
		}
	}
	if err != nil {
		return nil, &stageError{stage, fmt.Errorf("connect %s: %w", m.Addr, err)}
	}
	if err := p.login(ctx, c); err != nil {
		c.Close()
		var staged *stageError
		if !errors.As(err, &staged) {
			err = &stageError{"login", err}
		}
		return nil, err
	}
	return c, nil
}

// stageError says which step of opening a session failed (connect, tls, starttls,
// token, login), so that `casebook doctor` can say what to fix without parsing messages.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// Stage names the step that failed.
func (e *stageError) Stage() string { return e.stage }

func (p *Poller) login(ctx context.Context, c *imapclient.Client) error {
	m := p.cfg.Mailbox
	if err := c.WaitGreeting(); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if m.Auth != AuthXOAUTH2 {
		secret, err := m.secret()
		if err != nil {
			return err
		}
		if err := c.Login(m.Username, secret).Wait(); err != nil {
			return fmt.Errorf("login %s: %w", m.Username, err)
		}
		return nil
	}
	if !c.Caps().Has(imap.Cap("AUTH=XOAUTH2")) {
		return errNoXOAUTH2
	}
	token, err := m.token(ctx)
	if err != nil {
		return &stageError{"token", err}
	}
	err = authenticate(c, m.Username, token)
	var refused *imap.Error
	if err == nil || m.Tokens == nil || !errors.As(err, &refused) {
		return err
	}
	// The token may have been revoked or expired early: refresh once and try again.
	p.log.Info("XOAUTH2 login refused; refreshing the token", slog.Any("error", err))
	if token, err = m.Tokens.Refresh(ctx, token); err != nil {
		return &stageError{"token", err}
	}
	return authenticate(c, m.Username, token)
}

// authenticate logs in with SASL XOAUTH2.
func authenticate(c *imapclient.Client, user, token string) error {
	a := &xoauth2{user: user, token: token}
	if err := c.Authenticate(a); err != nil {
		return fmt.Errorf("authenticate %s: %w", user, a.err(err))
	}
	return nil
}

// folderName is each disposition's folder under Casebook.
var folderName = map[ingest.Disposition]string{
	ingest.Processed:   "Processed",
	ingest.Quarantined: "Quarantine",
	ingest.Ignored:     "Ignored",
}

// ensureFolders creates the filing folders that are missing and returns their full
// names, built with the server's hierarchy delimiter ("/" or ".").
func ensureFolders(c *imapclient.Client) (map[ingest.Disposition]string, error) {
	root, err := c.List("", "", nil).Collect()
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	delim := "/"
	if len(root) > 0 && root[0].Delim != 0 {
		delim = string(root[0].Delim)
	}
	existing, err := c.List("", "Casebook*", nil).Collect()
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	have := map[string]bool{}
	for _, d := range existing {
		have[d.Mailbox] = true
	}
	out := map[ingest.Disposition]string{}
	for disp, leaf := range folderName {
		name := "Casebook" + delim + leaf
		out[disp] = name
		if have[name] {
			continue
		}
		if err := c.Create(name, nil).Wait(); err != nil {
			var ierr *imap.Error
			if errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeAlreadyExists {
				continue
			}
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
	}
	return out, nil
}
