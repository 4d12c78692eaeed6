// Package demo holds what `casebook demo` runs against instead of the outside world:
// go-imap's in-memory IMAP server, an SMTP sink that keeps what casebook sends, the
// customer replies the demo delivers, and readers for mail a person brings along
// (an mbox file or a directory of .eml files).
package demo

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/emersion/go-message/mail"
)

// Case is a seeded case a reply answers.
type Case struct {
	Ref     string
	Subject string
}

// Attachment is a file in a demo reply.
type Attachment struct {
	Name        string
	ContentType string
	Body        []byte
}

// Reply is a customer's answer to a case mail.
type Reply struct {
	Case  Case
	Text  string
	Files []Attachment
}

// Replies returns the customer's replies to cases: three cases get one each, with
// five attachments between them (a PDF, two PNG scans, a CSV and a text note).
func Replies(cases []Case) []Reply {
	texts := []string{
		"Hello,\n\nhere are the lab results you asked for, and a scan of the referral.\n\nAlice",
		"Hi,\n\nattached is the insurance card, front side, and my notes from the call.\n\nAlice",
		"Good morning,\n\nthe blood pressure readings for last week are in the spreadsheet.\n\nAlice",
	}
	files := [][]Attachment{
		{{"lab-results.pdf", "application/pdf", pdf("Lab results: all values within range.")},
			{"referral-scan.png", "image/png", scan(color.RGBA{200, 220, 255, 255})}},
		{{"insurance-card.png", "image/png", scan(color.RGBA{255, 230, 200, 255})},
			{"call-notes.txt", "text/plain", []byte("Called on Monday; the clinic needs the card before the visit.\n")}},
		{{"bp-readings.csv", "text/csv", []byte("date,systolic,diastolic\n2026-01-05,121,79\n2026-01-06,118,77\n2026-01-07,124,80\n")}},
	}
	var rs []Reply
	for i, c := range cases {
		if i >= len(texts) {
			break
		}
		rs = append(rs, Reply{Case: c, Text: texts[i], Files: files[i]})
	}
	return rs
}

// AuthservID stands for the receiving server that checked the demo customer's mail:
// Stamp writes its Authentication-Results on a reply, and the demo trusts it, as a
// real site trusts mx.google.com (--trusted-authserv-id).
const AuthservID = "mx.demo.support.example"

// Stamp returns raw with AuthservID's word on top that mail from domain passed DMARC.
func Stamp(raw []byte, domain string) []byte {
	return append([]byte("Authentication-Results: "+AuthservID+"; dkim=pass header.d="+domain+
		"; dmarc=pass (p=reject) header.from="+domain+"\r\n"), raw...)
}

// Compose writes r as a MIME message from from to to, dated date: the subject names
// the case the way a mail client answers casebook's case mail ("Re: [CASE-000001] …").
func Compose(r Reply, from, to *mail.Address, date time.Time, messageID string) ([]byte, error) {
	var h mail.Header
	h.SetDate(date)
	h.SetAddressList("From", []*mail.Address{from})
	h.SetAddressList("To", []*mail.Address{to})
	h.SetSubject("Re: [" + r.Case.Ref + "] " + r.Case.Subject)
	h.SetMessageID(messageID)
	var buf bytes.Buffer
	w, err := mail.CreateWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("compose reply: %w", err)
	}
	var th mail.InlineHeader
	th.Set("Content-Type", "text/plain; charset=utf-8")
	tw, err := w.CreateSingleInline(th)
	if err != nil {
		return nil, fmt.Errorf("compose reply: %w", err)
	}
	io.WriteString(tw, r.Text)
	tw.Close()
	for _, f := range r.Files {
		var ah mail.AttachmentHeader
		ah.Set("Content-Type", f.ContentType)
		ah.SetFilename(f.Name)
		aw, err := w.CreateAttachment(ah)
		if err != nil {
			return nil, fmt.Errorf("compose reply: %w", err)
		}
		aw.Write(f.Body)
		aw.Close()
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compose reply: %w", err)
	}
	return buf.Bytes(), nil
}

// pdf returns a small, valid one-page PDF showing text.
func pdf(text string) []byte {
	stream := fmt.Sprintf("BT /F1 14 Tf 72 720 Td (%s) Tj ET", text)
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(stream), stream),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

// scan returns a small PNG standing in for a scanned document.
func scan(bg color.RGBA) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 120, 80))
	for y := range 80 {
		for x := range 120 {
			c := bg
			if y%12 == 6 && x > 10 && x < 110 {
				c = color.RGBA{60, 60, 60, 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// ReadMbox splits an mbox file into messages. Lines starting "From " separate
// messages (RFC 4155); one leading '>' is taken off quoted ">From " lines, as mboxrd
// writers add it.
func ReadMbox(r io.Reader) ([][]byte, error) {
	br := bufio.NewReader(r)
	var msgs [][]byte
	var cur *bytes.Buffer
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			switch {
			case bytes.HasPrefix(line, []byte("From ")):
				if cur != nil {
					msgs = append(msgs, trimSeparator(cur.Bytes()))
				}
				cur = &bytes.Buffer{}
			case cur == nil:
				return nil, fmt.Errorf("mbox: does not start with a \"From \" line")
			default:
				if q := bytes.TrimLeft(line, ">"); len(q) < len(line) && bytes.HasPrefix(q, []byte("From ")) {
					line = line[1:]
				}
				cur.Write(line)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("mbox: %w", err)
		}
	}
	if cur != nil {
		msgs = append(msgs, trimSeparator(cur.Bytes()))
	}
	return msgs, nil
}

// trimSeparator drops the empty line an mbox puts before the next "From " line.
func trimSeparator(b []byte) []byte {
	if bytes.HasSuffix(b, []byte("\r\n\r\n")) {
		return b[:len(b)-2]
	}
	if bytes.HasSuffix(b, []byte("\n\n")) {
		return b[:len(b)-1]
	}
	return b
}

// ReadEMLDir reads every *.eml file in dir, in name order.
func ReadEMLDir(dir string) ([][]byte, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return nil, fmt.Errorf("eml dir: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("eml dir %s: no *.eml files", dir)
	}
	sort.Strings(names)
	var msgs [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("eml dir: %w", err)
		}
		msgs = append(msgs, b)
	}
	return msgs, nil
}

// Summary is what the demo prints after its start-up.
type Summary struct {
	Ingested      int `json:"replies_ingested"`
	Quarantined   int `json:"quarantined"`
	Attachments   int `json:"attachments_stored"`
	Notifications int `json:"owner_notifications_sent"`
}

// String words the summary as the demo prints it.
func (s Summary) String() string {
	out := fmt.Sprintf("%s ingested, %s stored, %s sent", plural(s.Ingested, "reply", "replies"),
		plural(s.Attachments, "attachment", "attachments"), plural(s.Notifications, "owner notification", "owner notifications"))
	if s.Quarantined > 0 {
		out += fmt.Sprintf(", %d quarantined", s.Quarantined)
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
