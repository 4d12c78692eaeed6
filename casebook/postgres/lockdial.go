package postgres

import (
	"context"
	"net"
	"time"
)

// lockUserTimeout is how long data sent on a lock session may go unacknowledged
// before the client's kernel drops the connection.
const lockUserTimeout = 5 * time.Second

// lockDialer dials the lock sessions. Their client end gets keepalives like the
// server end's (lockSessionSettings) and a user timeout, so that a check sent into a
// network gone silent fails within seconds: lib/pq does not end a query whose context
// ends before the server answers, and without them the wait lasts as long as TCP's
// retransmissions, some fifteen minutes.
type lockDialer struct{ d net.Dialer }

func newLockDialer() lockDialer {
	return lockDialer{d: net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: time.Second, Count: 3},
		Control:         userTimeout(lockUserTimeout),
	}}
}

func (l lockDialer) Dial(network, address string) (net.Conn, error) {
	return l.d.Dial(network, address)
}

func (l lockDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	d := l.d
	d.Timeout = timeout
	return d.Dial(network, address)
}

func (l lockDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return l.d.DialContext(ctx, network, address)
}
