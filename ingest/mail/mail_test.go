package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func readCorpus(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	pdfSum = "56c2ac043c28d3543275a6f50b593a6beb0b6888ed8159ac02e3e7f4a32ccb26"
	pngSum = "62d7693d527ce6e5cf4a4f54478b889fe3e01a144d09a0a0482ca512d4225b3a"
)

// TestCorpus parses mail shaped as real clients write it and checks what casebook
// keeps of each.
func TestCorpus(t *testing.T) {
	tests := []struct {
		file string
		want Message
		err  error
	}{
		{
			file: "gmail_reply.eml",
			want: Message{
				MessageID:   "CAH+w=7Zk9s4Q@mail.gmail.com",
				From:        Address{Name: "Alice Example", Address: "alice@acme.example"},
				To:          []string{"support+token@support.example"},
				DeliveredTo: []string{"support+token@support.example"},
				Subject:     "Re: [CASE-000123] Lab results",
				InReplyTo:   []string{"kq3vtwx2opo6xfm5ylnbqkkyua@support.example"},
				References:  []string{"kq3vtwx2opo6xfm5ylnbqkkyua@support.example"},
				Reply:       "Here are the scans you asked for. The second one is the röntgen image.\n\nThanks,\nAlice",
				Attachments: []Attachment{
					{Filename: "Befund Müller 2026.pdf", ContentType: "application/pdf", DeclaredType: "application/pdf", ContentID: "f_lx1", Size: 77, SHA256: pdfSum},
					{Filename: "röntgen_aufnahme_linke_hand_seitlich_2026-11-24.png", ContentType: "image/png", DeclaredType: "image/png", ContentID: "f_lx2", Size: 66, SHA256: pngSum},
				},
			},
		},
		{
			file: "outlook_winmail.eml",
			want: Message{
				MessageID: "DB9PR02MB1234567ABCDEF@DB9PR02MB1234.eurprd02.prod.outlook.com",
				From:      Address{Name: "Bob Builder", Address: "bob.builder@acme.example"},
				To:        []string{"support@support.example"},
				Subject:   "RE: CASE-000123 Insurance form",
				Reply:     "Please find the signed form attached. Straße name corrected.\n\n[cid:image001.png@01DA1F2B.12345670]\n\nBest regards\nBob",
				Attachments: []Attachment{
					// Inline image without Content-Disposition: only a Content-ID in multipart/related.
					{Filename: "image001.png", ContentType: "image/png", DeclaredType: "image/png", Inline: true, ContentID: "image001.png@01DA1F2B.12345670", Size: 66, SHA256: pngSum},
					// No maintained Go TNEF decoder exists: winmail.dat is kept as it came.
					{Filename: "winmail.dat", ContentType: "application/octet-stream", DeclaredType: "application/ms-tnef", Size: 70, SHA256: "7996208fdaf0bec10a029b8c08aa5b01a56139a4977eb239ea51142eed9d8a32"},
				},
			},
		},
		{
			file: "apple_mail.eml",
			want: Message{
				MessageID: "5F3E1A2B-7C8D-4E9F-A0B1-C2D3E4F5A6B7@acme.example",
				From:      Address{Name: "Carol", Address: "carol@acme.example"},
				To:        []string{"support@support.example"},
				Subject:   "Re: [Case-000123] Follow-up",
				InReplyTo: []string{"unknown-thread@elsewhere.example"},
				Reply:     "Here is my CV as requested.",
				Attachments: []Attachment{
					// RFC 2231 name typed on a Mac (decomposed), stored NFC.
					{Filename: "R\u00e9sum\u00e9 m\u00e9dical.pdf", ContentType: "application/pdf", DeclaredType: "application/pdf", Inline: true, Size: 77, SHA256: pdfSum},
				},
			},
		},
		{
			file: "thunderbird.eml",
			want: Message{
				MessageID:  "8b5e2f7a-1c3d-4e5f-9a8b-7c6d5e4f3a2b@acme.example",
				From:       Address{Name: "Dieter Dose", Address: "dieter@acme.example"},
				To:         []string{"support@support.example"},
				Subject:    "Re: [CASE-000123] Rechnung",
				References: []string{"old-thread-1@support.example", "kq3vtwx2opo6xfm5ylnbqkkyua@support.example"},
				Reply:      "Guten Tag,\n\nanbei der Überweisungsträger.\n\nViele Grüße\nDieter",
				Attachments: []Attachment{
					// RFC 2231 continuations in ISO-8859-1 win over the RFC 2047 name.
					{Filename: "Überweisungsträger für die Abrechnung der Behandlung im November.pdf", ContentType: "application/pdf", DeclaredType: "application/pdf", Size: 77, SHA256: pdfSum},
				},
			},
		},
		{
			file: "non_utf8.eml",
			want: Message{
				MessageID: "20261124140000.1234@acme.example",
				From:      Address{Name: "Иван Петров", Address: "ivan@acme.example"},
				To:        []string{"support@support.example"},
				Subject:   "Re: [CASE-000123] Выписка из истории болезни",
				Reply:     "Добрый день, выписка во вложении.",
				Attachments: []Attachment{
					{Filename: "Выписка.pdf", ContentType: "application/pdf", DeclaredType: "application/pdf", Size: 77, SHA256: pdfSum},
					// A raw Latin-1 name; the text file's bytes are kept, not converted.
					{Filename: "café notes.txt", ContentType: "text/plain; charset=iso-8859-1", DeclaredType: "text/plain", Size: 12, SHA256: sha("caf\xe9 au lait")},
				},
			},
		},
		{
			file: "html_only.eml",
			want: Message{
				MessageID: "html-only-1@acme.example",
				From:      Address{Name: "Dana", Address: "dana@acme.example"},
				To:        []string{"support@support.example"},
				Subject:   "Re: [CASE-000123] Appointment",
				Reply:     "Thursday at 10 am works for me & my daughter.\n- Bring the referral\n- Bring the insurance card\nDownload: the report (https://files.example/r/123)",
			},
		},
		{
			file: "old_client_name_only.eml",
			want: Message{
				MessageID: "old-client-1@acme.example",
				From:      Address{Address: "eve@acme.example"},
				To:        []string{"support@support.example"},
				Subject:   "CASE-000123 scan",
				Reply:     "see attached",
				Attachments: []Attachment{
					// name= without a disposition, unquoted with a space.
					{Filename: "blood work.pdf", ContentType: "application/pdf", DeclaredType: "application/pdf", Size: 77, SHA256: pdfSum},
					// Path, bidi override and all: display-only and sanitised.
					{Filename: "passwdgpj.exe", ContentType: "text/plain; charset=utf-8", DeclaredType: "application/octet-stream", Size: 10, SHA256: sha("not really")},
				},
			},
		},
		{
			file: "nested_forward.eml",
			want: Message{
				MessageID: "fwd-1@acme.example",
				From:      Address{Name: "Alice Example", Address: "alice@acme.example"},
				To:        []string{"support@support.example"},
				Subject:   "Fwd: [CASE-000123] lab results",
				Reply:     "Forwarding the lab's mail.",
				Attachments: []Attachment{
					{Filename: "Your results.eml", ContentType: "message/rfc822", DeclaredType: "message/rfc822", Inline: true, Size: 508, SHA256: "5145c1c797c1591ea32b5686da68ae28116a9848e6c93276796c58034f68a9b7"},
					{Filename: "second.eml", ContentType: "message/rfc822", DeclaredType: "message/rfc822", Size: 508, SHA256: "5145c1c797c1591ea32b5686da68ae28116a9848e6c93276796c58034f68a9b7"},
				},
			},
		},
		{
			file: "auto_reply.eml",
			want: Message{
				MessageID: "ooo-1@acme.example",
				From:      Address{Name: "Grace", Address: "grace@acme.example"},
				To:        []string{"support@support.example"},
				Subject:   "Automatic reply: [CASE-000123] Lab results",
				Reply:     "I am out of the office until Monday.",
				AutoReply: "Auto-Submitted: auto-replied",
			},
		},
		{
			file: "bounce.eml",
			want: Message{
				MessageID: "bounce-1@mx.acme.example",
				From:      Address{Name: "Mail Delivery System", Address: "mailer-daemon@mx.acme.example"},
				To:        []string{"support@support.example"},
				Subject:   "Undelivered Mail Returned to Sender",
				Reply:     "This is the mail system. [CASE-000123] could not be delivered.",
				AutoReply: "null Return-Path",
				Attachments: []Attachment{
					{Filename: "attachment", ContentType: "text/plain; charset=utf-8", DeclaredType: "message/delivery-status", Size: 112, SHA256: "5ef2833d06432755d9509ac6077eae055192859a0c66c15054321da862f7a2b4"},
				},
			},
		},
		{file: "broken_boundary.eml", err: ErrMalformed},
		{file: "no_boundary_param.eml", err: ErrMalformed},
		{file: "bad_base64.eml", err: ErrMalformed},
	}
	ignore := cmpopts.IgnoreFields(Message{}, "Text", "Date")
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw := readCorpus(t, tt.file)
			m, err := Parse(bytes.NewReader(raw), Limits{})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				if m.MessageID == "" || m.From.Address == "" {
					t.Errorf("a malformed message must keep its header: %+v", m)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, *m, ignore, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// The streaming pass yields the same files, byte for byte.
			var i int
			err = Attachments(bytes.NewReader(raw), Limits{}, func(a Attachment, body io.Reader) error {
				h := sha256.New()
				n, err := io.Copy(h, body)
				if err != nil {
					return err
				}
				if i >= len(m.Attachments) || a.Filename != m.Attachments[i].Filename || n != m.Attachments[i].Size ||
					hex.EncodeToString(h.Sum(nil)) != m.Attachments[i].SHA256 {
					t.Errorf("streamed attachment %d (%s, %d bytes) differs from the parsed one", i, a.Filename, n)
				}
				i++
				return nil
			})
			if err != nil || i != len(m.Attachments) {
				t.Errorf("streamed %d attachments, %v; want %d", i, err, len(m.Attachments))
			}
		})
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// nested returns a message whose body is depth multiparts deep.
func nested(depth int) string {
	var b strings.Builder
	b.WriteString("From: a@b.example\r\nSubject: deep\r\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nbottom\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.String()
}

func manyParts(n int) string {
	var b strings.Builder
	b.WriteString("From: a@b.example\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n")
	for i := range n {
		fmt.Fprintf(&b, "--x\r\nContent-Type: text/plain; name=f%d.txt\r\n\r\n%d\r\n", i, i)
	}
	b.WriteString("--x--\r\n")
	return b.String()
}

func withAttachment(size int) string {
	return "From: a@b.example\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n" +
		"Content-Type: application/octet-stream; name=big.bin\r\n\r\n" + strings.Repeat("a", size) + "\r\n--x--\r\n"
}

func TestLimits(t *testing.T) {
	lim := Limits{MaxMessageSize: 4096, MaxAttachmentSize: 1024, MaxParts: 10, MaxDepth: 3, MaxHeaderBytes: 512}
	tests := []struct {
		name string
		msg  string
		want error
	}{
		{"depth at the limit", nested(3), nil},
		{"depth over the limit", nested(4), ErrLimit},
		{"parts at the limit", manyParts(9), nil},
		{"parts over the limit", manyParts(10), ErrLimit},
		{"attachment at the limit", withAttachment(1024), nil},
		{"attachment over the limit", withAttachment(1025), ErrLimit},
		{"message over the limit", "Subject: x\r\n\r\n" + strings.Repeat("a\r\n", 2000), ErrLimit},
		{"header over the limit", "Subject: " + strings.Repeat("a", 600) + "\r\n\r\nx", ErrLimit},
		{"part header over the limit", "Subject: x\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n" +
			"Content-Type: text/plain\r\nX-Filler: " + strings.Repeat("a", 600) + "\r\n\r\nhi\r\n--x--\r\n", ErrLimit},
		{"part header at the limit", "Subject: x\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n" +
			"Content-Type: text/plain\r\nX-Filler: " + strings.Repeat("a", 400) + "\r\n\r\nhi\r\n--x--\r\n", nil},
		{"header line of a deep bomb", "Subject: x\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.msg), lim)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			// The streaming pass enforces the same limits.
			err = Attachments(strings.NewReader(tt.msg), lim, func(a Attachment, body io.Reader) error {
				_, err := io.Copy(io.Discard, body)
				return err
			})
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("streaming: error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFilename(t *testing.T) {
	tests := []struct {
		name, disposition, contentType, want string
	}{
		{"plain", `attachment; filename="report.pdf"`, "", "report.pdf"},
		{"content-type name only", "", `application/pdf; name="scan.pdf"`, "scan.pdf"},
		{"unquoted with spaces", `attachment; filename=my scan.pdf`, "", "my scan.pdf"},
		{"RFC 2231 UTF-8", `attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf`, "", "€ rates.pdf"},
		{"RFC 2231 language", `attachment; filename*=iso-8859-1'de'M%FCller.pdf`, "", "Müller.pdf"},
		{"RFC 2231 continuations mixed", `attachment; filename*0*=UTF-8''%C3%9C; filename*1="ber.pdf"`, "", "Über.pdf"},
		{"RFC 2231 gap stops", `attachment; filename*0="a"; filename*2="c"`, "", "a"},
		{"RFC 2047 in quotes (Gmail)", `attachment; filename="=?UTF-8?B?0JLRi9C/0LjRgdC60LAucGRm?="`, "", "Выписка.pdf"},
		{"RFC 2047 split words", `attachment; filename="=?UTF-8?Q?Gr=C3=BC?= =?UTF-8?Q?=C3=9Fe.txt?="`, "", "Grüße.txt"},
		{"RFC 2047 inside RFC 2231", `attachment; filename*0="=?UTF-8?Q?caf=C3=A9?="; filename*1=".txt"`, "", "café.txt"},
		{"Shift_JIS", `attachment; filename="=?Shift_JIS?B?g2WDWINnLnR4dA==?="`, "", "テスト.txt"},
		{"unknown charset falls back", `attachment; filename*=x-unknown''caf%E9.txt`, "", "café.txt"},
		{"missing closing quote", `attachment; filename="half.pdf`, "", "half.pdf"},
		{"escaped quote", `attachment; filename="a\"b.pdf"`, "", `a"b.pdf`},
		{"semicolon in quotes", `attachment; filename="a;b.pdf"; size=3`, "", "a;b.pdf"},
		{"none", "inline", "image/png", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Filename(tt.disposition, tt.contentType); got != tt.want {
				t.Errorf("Filename(%q, %q) = %q, want %q", tt.disposition, tt.contentType, got, tt.want)
			}
		})
	}
}

func TestCleanFilename(t *testing.T) {
	for in, want := range map[string]string{
		"Re\u0301sume\u0301.pdf": "R\u00e9sum\u00e9.pdf",
		"../../etc/passwd":       "passwd",
		"evil\u202Efdp.exe":      "evilfdp.exe",
		"":                       "attachment",
		"a\x00b.txt":             "ab.txt",
	} {
		if got := CleanFilename(in); got != want {
			t.Errorf("CleanFilename(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDigest(t *testing.T) {
	base := "From: a@b.example\r\nSubject: hi\r\nMessage-ID: <1@b.example>\r\n\r\nbody\r\n"
	d := func(s string) string {
		t.Helper()
		got, err := Digest(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	same := []string{
		"Received: from x by y; Tue, 24 Nov 2026 10:00:00 +0000\r\n\tid 123\r\nReturn-Path: <a@b.example>\r\nDelivered-To: s@c.example\r\n" + base,
		"X-Original-To: s@c.example\r\nAuthentication-Results: mx; dkim=pass\r\n" + base,
		strings.ReplaceAll(base, "\r\n", "\n"),
	}
	for _, s := range same {
		if d(s) != d(base) {
			t.Errorf("trace fields or line endings changed the digest:\n%q", s)
		}
	}
	different := []string{
		strings.Replace(base, "body", "other body", 1),
		strings.Replace(base, "Subject: hi", "Subject: ho", 1),
		// A line in the body that looks like a trace field is content.
		strings.Replace(base, "body", "Received: by hand", 1),
	}
	for _, s := range different {
		if d(s) == d(base) {
			t.Errorf("different content, same digest:\n%q", s)
		}
	}
}

func TestReplyText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"gmail", "Thanks!\n\nOn Mon, Nov 23, 2026 at 4:12 PM Sam <s@x> wrote:\n> old", "Thanks!"},
		{"gmail wrapped attribution", "Thanks!\n\nOn Mon, Nov 23, 2026 at 4:12 PM Sam <\ns@x> wrote:\n> old", "Thanks!"},
		{"outlook", "Done.\n\n-----Original Message-----\nFrom: Sam\nSent: Monday\n\nold", "Done."},
		{"outlook rule", "Done.\n________________________________\nFrom: Sam <s@x>\nSent: Monday", "Done."},
		{"outlook header block", "Done.\n\nFrom: Sam <s@x>\nSent: Monday, 23 November\nTo: Bob", "Done."},
		{"signature", "Here.\n-- \nBob\nAcme", "Here."},
		{"german", "Anbei.\n\nAm 23.11.26 um 16:12 schrieb Sam:\n> alt", "Anbei."},
		{"french", "Ci-joint.\n\nLe lun. 23 nov. 2026 à 16:12, Sam <s@x> a écrit :\n> vieux", "Ci-joint."},
		{"interleaved", "> question one\nanswer one\n> question two\nanswer two", "answer one\nanswer two"},
		{"iphone", "Ok\n\nSent from my iPhone", "Ok"},
		{"nothing new", "> only quotes", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReplyText(tt.in); got != tt.want {
				t.Errorf("ReplyText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestHTMLToText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"paragraphs", "<p>one</p><p>two</p>", "one\ntwo"},
		{"inline", "Hello <b>world</b>!", "Hello world!"},
		{"br", "a<br>b<br/>c", "a\nb\nc"},
		{"entities", "&lt;x&gt; &amp; &eacute;", "<x> & é"},
		{"script and style", "<style>p{}</style><script>alert(1)</script>text", "text"},
		{"comment", "a<!-- hidden -->b", "ab"},
		{"blockquote", "new<blockquote>old</blockquote>", "new\n> old"},
		{"link", `see <a href="https://x.example/f">file</a>`, "see file (https://x.example/f)"},
		{"unclosed tag", "text <b", "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HTMLToText(tt.in); got != tt.want {
				t.Errorf("HTMLToText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAutoReply(t *testing.T) {
	tests := []struct {
		header string
		auto   bool
	}{
		{"Auto-Submitted: auto-replied", true},
		{"Auto-Submitted: auto-generated", true},
		{"Auto-Submitted: no", false},
		{"X-Autoreply: yes", true},
		{"Precedence: bulk", true},
		{"Precedence: list", true},
		{"Precedence: junk", true},
		{"Precedence: first-class", false},
		{"Return-Path: <>", true},
		{"Return-Path: <alice@acme.example>", false},
		{"Content-Type: multipart/report; report-type=delivery-status; boundary=x", true},
		{"Sender: nobody", false},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			msg := tt.header + "\r\nFrom: alice@acme.example\r\nSubject: x\r\n\r\n--x--\r\n"
			m, _ := Parse(strings.NewReader(msg), Limits{})
			if (m.AutoReply != "") != tt.auto {
				t.Errorf("AutoReply = %q, want auto=%v", m.AutoReply, tt.auto)
			}
		})
	}
	for _, from := range []string{"MAILER-DAEMON@mx.example", "postmaster@acme.example"} {
		m, _ := Parse(strings.NewReader("From: "+from+"\r\nSubject: x\r\n\r\nbody"), Limits{})
		if m.AutoReply == "" {
			t.Errorf("mail from %s is not taken for a bounce", from)
		}
	}
}
