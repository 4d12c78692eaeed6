// Package mail turns raw RFC 5322 messages into a channel-free Message: the headers
// that matter for matching, the text for the timeline, and the attachments as streams.
//
// A message is read front to back and never held in memory. The email channel reads
// it with ReadText (headers, text and the structural limits, attachments skipped
// undecoded) and, once it has decided to add it, with Attachments, which decodes each
// attachment once while it streams to the store; an attachment over its limit or
// badly encoded is then found half-way through storing. Parse does both in one pass
// and measures each attachment (size, SHA-256, sniffed type), for reading a stored
// message back.
package mail

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/gabriel-vasile/mimetype"
)

// Errors about the message itself. Callers quarantine such a message with the error's
// text as the reason; anything else is an I/O problem worth retrying.
var (
	// ErrMalformed reports MIME that cannot be read (a missing boundary, bad base64).
	ErrMalformed = errors.New("malformed message")
	// ErrLimit reports a message over one of the Limits.
	ErrLimit = errors.New("message is over a limit")
)

// Limits bound what one message may cost. Zero fields take the defaults.
type Limits struct {
	// MaxMessageSize caps the raw message: 40 MiB.
	MaxMessageSize int64
	// MaxAttachmentSize caps each decoded attachment: 25 MiB.
	MaxAttachmentSize int64
	// MaxParts caps the MIME parts, the message itself included: 200.
	MaxParts int
	// MaxDepth caps multipart nesting: 10.
	MaxDepth int
	// MaxHeaderBytes caps the top-level header block and each MIME part's: 64 KiB.
	MaxHeaderBytes int64
}

// The defaults of Limits.
const (
	DefaultMaxMessageSize    = 40 << 20
	DefaultMaxAttachmentSize = 25 << 20
	DefaultMaxParts          = 200
	DefaultMaxDepth          = 10
	DefaultMaxHeaderBytes    = 64 << 10
)

// maxText caps the text kept for the timeline; the raw message keeps the rest.
const maxText = 1 << 20

// WithDefaults returns l with its zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxMessageSize <= 0 {
		l.MaxMessageSize = DefaultMaxMessageSize
	}
	if l.MaxAttachmentSize <= 0 {
		l.MaxAttachmentSize = DefaultMaxAttachmentSize
	}
	if l.MaxParts <= 0 {
		l.MaxParts = DefaultMaxParts
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return l
}

// Address is a mailbox: a display name and an addr-spec.
type Address struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
}

// Message is what casebook needs of a mail.
type Message struct {
	// MessageID and the ids in InReplyTo and References are without angle brackets.
	MessageID   string
	From        Address
	To          []string
	Cc          []string
	DeliveredTo []string
	XOriginalTo []string
	Subject     string
	InReplyTo   []string
	References  []string
	Date        time.Time
	// Text is the body: the text/plain parts, or the HTML parts made readable when
	// there is no plain part.
	Text string
	// Reply is Text without the quoted history and the signature.
	Reply string
	// Attachments are measured by Parse; Attachments streams them in this order.
	Attachments []Attachment
	// AutoReply says why the message is an auto-reply or a bounce, or is "".
	AutoReply string
}

// Attachment describes one attached file.
type Attachment struct {
	// Filename is decoded, NFC and sanitised; never empty.
	Filename string `json:"filename"`
	// ContentType is sniffed from the bytes (set by Parse; "" in Attachments).
	ContentType string `json:"content_type"`
	// DeclaredType is what the sender's Content-Type said.
	DeclaredType string `json:"-"`
	Inline       bool   `json:"inline"`
	ContentID    string `json:"-"`
	Size         int64  `json:"size"`
	SHA256       string `json:"sha256"`
}

// Parse reads a whole message from r: it checks every limit, keeps the headers and the
// text, and measures each attachment. An error wrapping ErrMalformed or ErrLimit is
// about the message; the returned Message then still holds the top-level headers when
// they could be read. Other errors come from r.
func Parse(r io.Reader, lim Limits) (*Message, error) {
	lim = lim.WithDefaults()
	m := &Message{}
	var plain, html textBuf
	w := &walker{
		lim: lim,
		onHeader: func(h textproto.Header) {
			readHeader(m, h)
		},
		onText: func(mediaType, charset string, body io.Reader) error {
			if mediaType == "text/html" {
				return html.add(charset, body)
			}
			return plain.add(charset, body)
		},
		onFile: func(a Attachment, body io.Reader) error {
			h := sha256.New()
			head := &prefix{max: 3072}
			n, err := io.Copy(io.MultiWriter(h, head), body)
			if err != nil {
				return err
			}
			a.Size = n
			a.SHA256 = hex.EncodeToString(h.Sum(nil))
			a.ContentType = mimetype.Detect(head.buf).String()
			m.Attachments = append(m.Attachments, a)
			return nil
		},
	}
	if err := w.walk(r); err != nil {
		return m, err
	}
	m.setText(plain.String(), html.String())
	return m, nil
}

// ReadText reads the message in r for matching and for a person to look at: the
// headers and the text, with the limits on size, parts, depth and headers checked.
// Attachments are skipped without being decoded (so neither their size limit nor bad
// base64 in them is found here), which makes a message that will not be added cost
// one read of its bytes and no more. Errors are as Parse's; the Message then holds
// what could be read, and it never lists attachments.
func ReadText(r io.Reader, lim Limits) (*Message, error) {
	rd, err := Begin(r, lim)
	if err == nil {
		err = rd.Rest(nil)
	}
	return rd.Message(), err
}

// Reading reads one message once, in two steps: Begin reads the top-level header and
// Rest the parts. In between, the caller decides from the header alone what the parts
// are for: Rest either hands each attachment over decoded as the walk meets it, or
// skips them undecoded as ReadText does.
type Reading struct {
	w           walker
	h           textproto.Header
	br          *bufio.Reader
	m           Message
	plain, html textBuf
	started     bool
}

// Begin reads the header of the message in r. The Message then holds its fields. An
// error is about the header (ErrLimit, ErrMalformed) or comes from r; the Message
// holds what could be read, and Rest must not be called.
func Begin(r io.Reader, lim Limits) (*Reading, error) {
	rd := &Reading{}
	rd.w = walker{
		lim:      lim.WithDefaults(),
		onHeader: func(h textproto.Header) { readHeader(&rd.m, h) },
		onText: func(mediaType, charset string, body io.Reader) error {
			if mediaType == "text/html" {
				return rd.html.add(charset, body)
			}
			return rd.plain.add(charset, body)
		},
	}
	var err error
	rd.h, rd.br, err = rd.w.head(r)
	return rd, err
}

// Rest reads the parts after the header, once: the text goes into the Message, and
// each attachment, when fn is set, to fn as Attachments hands it over (fn's error
// stops the walk and is returned); without fn the attachments are skipped undecoded.
// Errors are as Parse's.
func (rd *Reading) Rest(fn func(a Attachment, body io.Reader) error) error {
	rd.started = true
	rd.w.onFile = fn
	err := rd.w.body(rd.h, rd.br)
	rd.m.setText(rd.plain.String(), rd.html.String())
	return err
}

// Started says whether Rest was called.
func (rd *Reading) Started() bool { return rd.started }

// Message returns the message as read so far: the header's fields after Begin, with
// the text after Rest.
func (rd *Reading) Message() *Message { return &rd.m }

// setText fills Text and Reply from the plain and HTML parts.
func (m *Message) setText(plain, html string) {
	m.Text = plain
	if strings.TrimSpace(m.Text) == "" {
		m.Text = HTMLToText(html)
	}
	m.Reply = ReplyText(m.Text)
}

// Attachments streams the attachments of the message in r, in the order Parse lists
// them, to fn. Each body must be read before fn returns; Size, SHA256 and ContentType
// are left for the reader to find. fn's error stops the walk and is returned.
func Attachments(r io.Reader, lim Limits, fn func(a Attachment, body io.Reader) error) error {
	w := &walker{lim: lim.WithDefaults(), onFile: fn}
	return w.walk(r)
}

// textBuf collects text parts up to maxText, each converted to UTF-8.
type textBuf struct{ strings.Builder }

func (t *textBuf) add(charset string, body io.Reader) error {
	room := maxText - t.Len()
	if room <= 0 {
		_, err := io.Copy(io.Discard, body)
		return err
	}
	b, err := io.ReadAll(io.LimitReader(body, int64(room)))
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return err
	}
	if t.Len() > 0 {
		t.WriteString("\n")
	}
	t.WriteString(strings.ReplaceAll(decodeCharset(charset, b), "\r\n", "\n"))
	return nil
}

// prefix keeps the first max bytes written to it, for sniffing.
type prefix struct {
	buf []byte
	max int
}

func (p *prefix) Write(b []byte) (int, error) {
	if room := p.max - len(p.buf); room > 0 {
		p.buf = append(p.buf, b[:min(room, len(b))]...)
	}
	return len(b), nil
}

// capReader fails with err once more than max bytes have been read, so that a limit
// is reported instead of silently truncating.
type capReader struct {
	r   io.Reader
	n   int64
	max int64
	err error
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n > c.max {
		return 0, c.err
	}
	if room := c.max + 1 - c.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return n, c.err
	}
	return n, err
}

func limitErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrLimit}, args...)...)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
