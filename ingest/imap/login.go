package imap

import (
	"context"
	"crypto/tls"
	"log/slog"

	"github.com/emersion/go-imap/v2/imapclient"
)

// Connect connects, secures the connection and logs in to the mailbox exactly as the
// poller does (LOGIN, or XOAUTH2 with a token from m.Tokens or password_file), for checks
// outside the poller such as `casebook doctor`. tlsConfig, when set, replaces the
// system roots. A failure carries Stage(): connect, tls, starttls, token (getting an
// OAuth access token) or login.
func (m Mailbox) Connect(ctx context.Context, tlsConfig *tls.Config) (*imapclient.Client, error) {
	p := &Poller{cfg: Config{Mailbox: m, TLSConfig: tlsConfig}, log: slog.New(slog.DiscardHandler)}
	// No wake channel: a nil channel makes dial's non-blocking send a no-op.
	return p.dial(ctx, nil)
}
