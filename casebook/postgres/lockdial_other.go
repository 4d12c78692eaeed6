//go:build !linux

package postgres

import (
	"syscall"
	"time"
)

// userTimeout leaves the connection as it is where TCP_USER_TIMEOUT is not set the
// Linux way; the keepalives still end a silent session, later.
func userTimeout(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}
