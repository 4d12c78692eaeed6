// Package clamav scans files with ClamAV's daemon, clamd, over its socket protocol:
// INSTREAM for files, PING and VERSION for health checks. Commands use the "z" form
// (NUL-terminated command and answer), as clamd's manual recommends for clients.
//
// Every failure to get a verdict (clamd unreachable, a dropped connection, a
// timeout, an error answer) wraps casebook.ErrScanUnavailable, so that the write path
// can tell "we could not check" from "the file is infected".
package clamav

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

// chunkSize is the largest INSTREAM chunk sent. clamd takes chunks of any size up to
// its StreamMaxLength; 64 KiB keeps the buffer small and the writes few.
const chunkSize = 64 << 10

// DefaultTimeout bounds each step with clamd: connecting, each chunk written, and
// the wait for the verdict after the last one (clamd scans only then, and a large
// archive takes it a while).
const DefaultTimeout = 60 * time.Second

// Client talks to one clamd. It opens a connection per call, so it is safe for
// concurrent use; clamd runs scans in parallel up to its MaxThreads.
type Client struct {
	network, address string
	timeout          time.Duration
}

var _ casebook.Scanner = (*Client)(nil)

// Parse reads clamd's address: tcp://HOST:PORT or unix:///PATH/TO/SOCKET.
func Parse(raw string) (*Client, error) {
	u, err := url.Parse(raw)
	if err != nil {
		u = &url.URL{}
	}
	c := &Client{network: u.Scheme, timeout: DefaultTimeout}
	switch u.Scheme {
	case "tcp":
		if u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("clamd address %q: want tcp://HOST:PORT", raw)
		}
		c.address = u.Host
	case "unix":
		if u.Host != "" || u.Path == "" {
			return nil, fmt.Errorf("clamd address %q: want unix:///PATH/TO/SOCKET", raw)
		}
		c.address = u.Path
	default:
		return nil, fmt.Errorf("clamd address %q: want tcp://HOST:PORT or unix:///PATH", raw)
	}
	return c, nil
}

// WithTimeout returns a copy of c that gives each step d instead of DefaultTimeout.
func (c *Client) WithTimeout(d time.Duration) *Client {
	cc := *c
	cc.timeout = d
	return &cc
}

// String names the daemon as configured.
func (c *Client) String() string {
	if c.network == "unix" {
		return "unix://" + c.address
	}
	return c.network + "://" + c.address
}

// Scan implements casebook.Scanner: it streams r to clamd with INSTREAM and returns the
// signature clamd found, or "" for a clean file. clamd scans archives and mail
// containers inside the stream within its own limits (see the README).
func (c *Client) Scan(ctx context.Context, r io.Reader) (string, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	buf := make([]byte, 4+chunkSize)
	copy(buf, "zINSTREAM\x00")
	if err := c.write(conn, buf[:len("zINSTREAM\x00")]); err != nil {
		return "", c.unavailable(ctx, conn, "send INSTREAM", err)
	}
	for {
		n, rerr := io.ReadFull(r, buf[4:])
		if n > 0 {
			binary.BigEndian.PutUint32(buf[:4], uint32(n))
			if err := c.write(conn, buf[:4+n]); err != nil {
				return "", c.unavailable(ctx, conn, "send file", err)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			// The file's own source failed: no verdict is wanted any more.
			return "", fmt.Errorf("clamav: read file: %w", rerr)
		}
	}
	// A zero-length chunk ends the stream.
	if err := c.write(conn, []byte{0, 0, 0, 0}); err != nil {
		return "", c.unavailable(ctx, conn, "end stream", err)
	}
	answer, err := c.answer(conn)
	if err != nil {
		return "", c.unavailable(ctx, conn, "read verdict", err)
	}
	return parseVerdict(answer)
}

// parseVerdict reads INSTREAM's answer: "stream: OK", "stream: NAME FOUND", or an
// error such as "INSTREAM size limit exceeded. ERROR".
func parseVerdict(answer string) (string, error) {
	rest, ok := strings.CutPrefix(answer, "stream: ")
	switch {
	case ok && rest == "OK":
		return "", nil
	case ok && strings.HasSuffix(rest, " FOUND"):
		if sig := strings.TrimSpace(strings.TrimSuffix(rest, " FOUND")); sig != "" {
			return sig, nil
		}
	}
	return "", fmt.Errorf("%w: %s", casebook.ErrScanUnavailable, answered(answer))
}

// answered words an answer that is not a verdict, with what to do about the one an
// operator can fix.
func answered(answer string) string {
	if strings.Contains(answer, "size limit exceeded") {
		return fmt.Sprintf("clamd answered %q: raise StreamMaxLength in clamd.conf above --max-file-size", answer)
	}
	return fmt.Sprintf("clamd answered %q", answer)
}

// Ping sends PING and expects PONG.
func (c *Client) Ping(ctx context.Context) error {
	a, err := c.command(ctx, "PING")
	if err != nil {
		return err
	}
	if a != "PONG" {
		return fmt.Errorf("%w: clamd answered PING with %q", casebook.ErrScanUnavailable, a)
	}
	return nil
}

// Version returns clamd's VERSION answer: "ClamAV 1.4.6/27474/Thu Nov 27 09:32:11
// 2026" (engine, signature database version and date), or just "ClamAV 1.4.6" when
// no official database is loaded.
func (c *Client) Version(ctx context.Context) (string, error) {
	return c.command(ctx, "VERSION")
}

// command sends a command without payload and returns the answer.
func (c *Client) command(ctx context.Context, name string) (string, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := c.write(conn, []byte("z"+name+"\x00")); err != nil {
		return "", c.unavailable(ctx, conn, "send "+name, err)
	}
	a, err := c.answer(conn)
	if err != nil {
		return "", c.unavailable(ctx, conn, "read "+name, err)
	}
	return a, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: c.timeout}
	conn, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		return nil, fmt.Errorf("%w: clamd at %s: %w", casebook.ErrScanUnavailable, c, err)
	}
	return conn, nil
}

// write sends b whole, or fails after the timeout.
func (c *Client) write(conn net.Conn, b []byte) error {
	if err := conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return err
	}
	_, err := conn.Write(b)
	return err
}

// maxAnswer bounds an answer: a verdict names one signature.
const maxAnswer = 4096

// answer reads one NUL-terminated answer.
func (c *Client) answer(conn net.Conn) (string, error) {
	if err := conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return "", err
	}
	a, err := bufio.NewReader(io.LimitReader(conn, maxAnswer)).ReadBytes(0)
	if err != nil {
		if len(a) > 0 && errors.Is(err, io.EOF) {
			return "", fmt.Errorf("answer %q cut short: %w", a, io.ErrUnexpectedEOF)
		}
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("clamd closed the connection without an answer: %w", io.ErrUnexpectedEOF)
		}
		return "", err
	}
	return string(bytes.TrimSpace(bytes.TrimSuffix(a, []byte{0}))), nil
}

// unavailable wraps a failed step as ErrScanUnavailable. When clamd dropped the
// connection because it refused the stream (too long, out of memory), it has usually
// said why first: that answer is worth more than "broken pipe".
func (c *Client) unavailable(ctx context.Context, conn net.Conn, step string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w: clamd at %s: %s: %w", casebook.ErrScanUnavailable, c, step, ctxErr)
	}
	if !strings.HasPrefix(step, "read") {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		if a, aerr := bufio.NewReader(io.LimitReader(conn, maxAnswer)).ReadBytes(0); aerr == nil {
			return fmt.Errorf("%w: clamd at %s: %s: %s", casebook.ErrScanUnavailable, c, step,
				answered(string(bytes.TrimSuffix(a, []byte{0}))))
		}
	}
	return fmt.Errorf("%w: clamd at %s: %s: %w", casebook.ErrScanUnavailable, c, step, err)
}
