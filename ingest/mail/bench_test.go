package mail

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"testing"
)

// reply100KB is a reply with a 100 KB attachment, the benchmark shape of issue 3.
func reply100KB() []byte {
	data := bytes.Repeat([]byte("casebook benchmark payload\n"), 100_000/27)
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	b.WriteString("From: Alice <alice@acme.example>\r\nTo: support@support.example\r\nSubject: Re: [CASE-000001] scan\r\n" +
		"Message-ID: <bench@acme.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHere it is.\r\n\r\nOn Mon, Sam wrote:\r\n> send it\r\n" +
		"--b\r\nContent-Type: application/pdf; name=scan.pdf\r\nContent-Disposition: attachment; filename=scan.pdf\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n")
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--b--\r\n")
	return []byte(b.String())
}

// BenchmarkParse measures the measuring pass (headers, text, every attachment decoded
// and hashed) plus the digest, per message.
func BenchmarkParse(b *testing.B) {
	raw := reply100KB()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Digest(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
		m, err := Parse(bytes.NewReader(raw), Limits{})
		if err != nil || len(m.Attachments) != 1 {
			b.Fatal(err)
		}
	}
}

// BenchmarkAttachments measures the streaming pass alone.
func BenchmarkAttachments(b *testing.B) {
	raw := reply100KB()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		err := Attachments(bytes.NewReader(raw), Limits{}, func(a Attachment, body io.Reader) error {
			_, err := io.Copy(io.Discard, body)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHTMLToTextUnclosed guards against quadratic time on hostile HTML: a page of
// anchors and scripts that are never closed.
func BenchmarkHTMLToTextUnclosed(b *testing.B) {
	page := strings.Repeat(`<a href="https://x.example/">x <b>y</b> `, 20000)
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		HTMLToText(page)
	}
}

// BenchmarkReadText measures what a mail that is not added costs to read: headers,
// text and limits, the attachment skipped undecoded.
func BenchmarkReadText(b *testing.B) {
	raw := reply100KB()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		m, err := ReadText(bytes.NewReader(raw), Limits{})
		if err != nil || m.Subject == "" {
			b.Fatal(err)
		}
	}
}
