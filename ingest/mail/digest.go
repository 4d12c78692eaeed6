package mail

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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

// Digest returns the hex SHA-256 of the message in r without its trace fields and
// with CRLF read as LF, so the same mail appended twice, delivered over two routes,
// or stored by servers that differ in line endings has one digest, while two
// different mails that reuse a Message-ID do not. Errors come only from r.
func Digest(r io.Reader) (string, error) {
	h := sha256.New()
	w := &lfWriter{w: h}
	br := bufio.NewReaderSize(r, 32<<10)
	skip, midLine := false, false
	seen := 0
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			seen += len(line)
			switch {
			case midLine:
			case seen > digestHeaderCap:
				skip = false
			case len(bytes.TrimRight(line, "\r\n")) == 0:
				w.Write(line)
				_, err := io.Copy(w, br)
				return hex.EncodeToString(h.Sum(nil)), err
			case line[0] == ' ' || line[0] == '\t':
			default:
				name, _, _ := bytes.Cut(line, []byte(":"))
				skip = isTraceField(string(name))
			}
			if !skip {
				w.Write(line)
			}
			midLine = errors.Is(err, bufio.ErrBufferFull)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// lfWriter drops a CR that precedes an LF.
type lfWriter struct {
	w   io.Writer
	cr  bool
	buf []byte
}

func (l *lfWriter) Write(p []byte) (int, error) {
	n := len(p)
	out := l.buf[:0]
	if l.cr && n > 0 {
		if p[0] != '\n' {
			out = append(out, '\r')
		}
		l.cr = false
	}
	for {
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			out = append(out, p...)
			break
		}
		out = append(out, p[:i]...)
		if i+1 == len(p) {
			l.cr = true
			break
		}
		if p[i+1] != '\n' {
			out = append(out, '\r')
		}
		p = p[i+1:]
	}
	l.buf = out
	_, err := l.w.Write(out)
	return n, err
}
