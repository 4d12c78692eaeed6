package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"strings"
)

// traceFields are added to a message in transit or on delivery (RFC 5321 section
// 4.4, RFC 5598, RFC 8601, RFC 8617, and what MTAs, spam filters and mail stores
// add), so the same mail delivered twice, or to two mailboxes, differs only in them.
var traceFields = map[string]bool{
	"received": true, "x-received": true, "return-path": true, "delivered-to": true, "x-delivered-to": true,
	"x-original-to": true, "envelope-to": true, "x-envelope-to": true, "x-envelope-from": true,
	"authentication-results": true, "arc-seal": true, "arc-message-signature": true,
	"arc-authentication-results": true, "received-spf": true, "x-originating-ip": true,
	"status": true, "x-status": true, "x-keywords": true, "x-uid": true, "content-length": true, "lines": true,
	"x-original-arrival-time": true, "x-gm-message-state": true, "x-google-smtp-source": true,
}

// traceFieldPrefixes cover families of transit fields added by spam filters and
// Exchange's transport.
var traceFieldPrefixes = []string{"x-spam-", "x-virus-", "x-ms-exchange-organization-", "x-ms-exchange-transport-", "x-forefront-", "x-microsoft-antispam"}

func isTraceField(name string) bool {
	name = strings.ToLower(strings.TrimSpace(name))
	if traceFields[name] {
		return true
	}
	for _, p := range traceFieldPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// digestHeaderCap bounds how far Digest looks for the end of the header; a longer
// header is hashed whole.
const digestHeaderCap = 1 << 20

// digestLineCap is the longest header line looked at as one: a longer line is taken
// in pieces of this size, each after the first kept or dropped with the field it
// continues. Digests are idempotency keys that must not change between versions, so
// this is the size of the buffer the first version read lines with.
const digestLineCap = 32 << 10

// Digest returns the hex SHA-256 of the message in r without its trace fields and
// with CRLF read as LF, so the same mail appended twice, delivered over two routes,
// or stored by servers that differ in line endings has one digest, while two
// different mails that reuse a Message-ID do not. Errors come only from r.
func Digest(r io.Reader) (string, error) {
	d := NewDigester()
	if _, err := io.Copy(d, r); err != nil {
		return "", err
	}
	return d.Sum(), nil
}

// Digester computes Digest from the bytes written to it, so that it can take a
// message from a read that other consumers share instead of reading it again.
type Digester struct {
	h    hash.Hash
	w    lfWriter
	body bool
	// seen counts the header bytes so far.
	seen int
	// line gathers the header line being written, up to digestLineCap.
	line []byte
	// skip is whether the current field is a trace field; midLine whether the bytes
	// coming continue a piece that outgrew line.
	skip, midLine bool
}

// NewDigester returns a Digester at the start of a message.
func NewDigester() *Digester {
	h := sha256.New()
	return &Digester{h: h, w: lfWriter{w: h}}
}

// Write takes the next bytes of the message; it never fails.
func (d *Digester) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && !d.body {
		i := bytes.IndexByte(p, '\n')
		take := len(p)
		if i >= 0 {
			take = i + 1
		}
		take = min(take, digestLineCap-len(d.line))
		d.line = append(d.line, p[:take]...)
		p = p[take:]
		full := len(d.line) == digestLineCap && d.line[len(d.line)-1] != '\n'
		if d.line[len(d.line)-1] == '\n' || full {
			d.endPiece(full)
		}
	}
	if len(p) > 0 {
		d.w.Write(p)
	}
	return n, nil
}

// endPiece decides on the gathered piece of a header line: full means it ended at
// digestLineCap rather than at a line break.
func (d *Digester) endPiece(full bool) {
	piece := d.line
	d.line = d.line[:0]
	d.seen += len(piece)
	switch {
	case d.midLine:
	case d.seen > digestHeaderCap:
		d.skip = false
	case len(bytes.TrimRight(piece, "\r\n")) == 0:
		d.w.Write(piece)
		d.body = true
		return
	case piece[0] == ' ' || piece[0] == '\t':
	default:
		name, _, _ := bytes.Cut(piece, []byte(":"))
		d.skip = isTraceField(string(name))
	}
	if !d.skip {
		d.w.Write(piece)
	}
	d.midLine = full
}

// Sum returns the digest of what was written: a message that ends inside its header
// ends with its last line, as if a line break followed.
func (d *Digester) Sum() string {
	if !d.body && len(d.line) > 0 {
		d.endPiece(false)
	}
	d.w.flush()
	return hex.EncodeToString(d.h.Sum(nil))
}

// lfWriter drops a CR that precedes an LF. It hands its writer the bytes between CRs
// through a fixed buffer, so that a message's many short lines cost few writes.
type lfWriter struct {
	w   io.Writer
	cr  bool
	buf [4096]byte
	n   int
}

func (l *lfWriter) Write(p []byte) (int, error) {
	n := len(p)
	if l.cr && n > 0 {
		if p[0] != '\n' {
			l.put([]byte{'\r'})
		}
		l.cr = false
	}
	for {
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			l.put(p)
			break
		}
		l.put(p[:i])
		if i+1 == len(p) {
			l.cr = true
			break
		}
		if p[i+1] != '\n' {
			l.put([]byte{'\r'})
		}
		p = p[i+1:]
	}
	return n, nil
}

func (l *lfWriter) put(p []byte) {
	if l.n+len(p) > len(l.buf) {
		l.flush()
		if len(p) > len(l.buf) {
			l.w.Write(p)
			return
		}
	}
	l.n += copy(l.buf[l.n:], p)
}

func (l *lfWriter) flush() {
	l.w.Write(l.buf[:l.n])
	l.n = 0
}
