package outbox

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
	"unicode/utf8"

	gomail "github.com/emersion/go-message/mail"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/templates"
)

// errCompose marks a mail that cannot be built from its row: retrying cannot help.
var errCompose = errors.New("cannot compose mail")

// kinds lists every mail casebook sends; each has KIND.txt and KIND.html in templates/mail.
var kinds = []casebook.OutboxKind{casebook.MailOwnerNotification, casebook.MailCaseEmail, casebook.MailTemporaryPassword}

type mailTemplate struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// composer turns outbox rows into RFC 5322 messages. Templates are parsed once.
type composer struct {
	tmpl         map[casebook.OutboxKind]mailTemplate
	from         *mail.Address
	replyAddress string
	signer       *casebook.TokenSigner
	baseURL      string
}

var funcs = map[string]any{
	"size":    casebook.FormatSize,
	"channel": channelName,
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
	"when": func(t time.Time) string { return t.UTC().Format("2 January 2006 at 15:04 UTC") },
}

func newComposer(fsys fs.FS, from *mail.Address, replyAddress string, signer *casebook.TokenSigner, baseURL string) (*composer, error) {
	c := &composer{
		tmpl:         map[casebook.OutboxKind]mailTemplate{},
		from:         from,
		replyAddress: replyAddress,
		signer:       signer,
		baseURL:      strings.TrimRight(baseURL, "/"),
	}
	for _, k := range kinds {
		txt, err := texttemplate.New(string(k)+".txt").Funcs(funcs).ParseFS(fsys, "mail/"+string(k)+".txt")
		if err != nil {
			return nil, fmt.Errorf("mail templates: %w", err)
		}
		if txt.Lookup("subject") == nil {
			return nil, fmt.Errorf("mail templates: %s.txt has no subject block", k)
		}
		html, err := htmltemplate.New("layout.html").Funcs(funcs).ParseFS(fsys, "mail/layout.html", "mail/"+string(k)+".html")
		if err != nil {
			return nil, fmt.Errorf("mail templates: %w", err)
		}
		c.tmpl[k] = mailTemplate{text: txt, html: html}
	}
	return c, nil
}

// defaultTemplates is the embedded set.
func defaultTemplates() fs.FS { return templates.Mail }

// The templates' data: a mail kind's fields and the link into the web page.
type (
	ownerNotification struct {
		casebook.OwnerNotification
		Link string
	}
	caseEmail struct {
		casebook.CaseEmail
		Link string
	}
	temporaryPassword struct {
		casebook.TemporaryPasswordMail
		Link string
	}
)

// composed is a mail ready for SMTP.
type composed struct {
	from, to string
	msg      []byte
}

// compose builds the message for e, dated date.
func (c *composer) compose(e casebook.OutboxEntry, date time.Time) (composed, error) {
	t, ok := c.tmpl[e.Kind]
	if !ok {
		return composed{}, fmt.Errorf("%w: unknown kind %q", errCompose, e.Kind)
	}
	to, err := mail.ParseAddress(e.Recipient)
	if err != nil || to.Name != "" || strings.ContainsAny(to.Address, "\r\n<> ") {
		return composed{}, fmt.Errorf("%w: recipient %q is not a bare address", errCompose, e.Recipient)
	}
	var h gomail.Header
	var data any
	if e.Data == nil || e.Data.MailKind() != e.Kind {
		return composed{}, fmt.Errorf("%w: %s mail without its data", errCompose, e.Kind)
	}
	switch m := e.Data.(type) {
	case casebook.OwnerNotification:
		d := ownerNotification{OwnerNotification: m}
		if d.Case == "" || len(d.Files) == 0 {
			return composed{}, fmt.Errorf("%w: owner notification without case or files", errCompose)
		}
		d.Subject, d.Author = headerText(d.Subject), headerText(d.Author)
		d.Files = slices.Clone(d.Files)
		for i := range d.Files {
			d.Files[i].Name = headerText(d.Files[i].Name)
		}
		d.Link = c.baseURL + "/cases/" + url.PathEscape(d.Case)
		data = d
	case casebook.CaseEmail:
		d := caseEmail{CaseEmail: m}
		if d.Case == "" || e.CaseNumber == 0 || e.UserID == nil {
			return composed{}, fmt.Errorf("%w: case email without case or requester", errCompose)
		}
		d.Subject, d.Author = headerText(d.Subject), headerText(d.Author)
		if c.signer == nil || c.replyAddress == "" {
			return composed{}, fmt.Errorf("%w: case email needs --reply-address and --token-key", errCompose)
		}
		d.Link = c.baseURL + "/cases/" + url.PathEscape(d.Case)
		// The token's life starts with the mail's Date, so a composed mail is the same
		// whenever it is composed again.
		token := c.signer.Sign(casebook.ReplyToken{CaseNumber: e.CaseNumber, UserID: *e.UserID, Expires: date.Add(c.signer.TTL())})
		reply, err := casebook.PlusAddress(c.replyAddress, token)
		if err != nil {
			return composed{}, fmt.Errorf("%w: %w", errCompose, err)
		}
		h.SetAddressList("Reply-To", []*mail.Address{{Address: reply}})
		if id := msgID(d.InReplyTo); id != "" {
			h.SetMsgIDList("In-Reply-To", []string{id})
			h.SetMsgIDList("References", []string{id})
		}
		data = d
	case casebook.TemporaryPasswordMail:
		d := temporaryPassword{TemporaryPasswordMail: m}
		if d.Password == "" || d.ExpiresAt.IsZero() {
			return composed{}, fmt.Errorf("%w: temporary password mail without password or expiry", errCompose)
		}
		if !d.ExpiresAt.After(date) {
			// A password that no longer works would only confuse; the user asks again.
			return composed{}, fmt.Errorf("%w: the temporary password expired at %s, before it could be sent", errCompose, d.ExpiresAt.UTC().Format(time.RFC3339))
		}
		d.Link = c.baseURL + "/login"
		d.Name = headerText(d.Name)
		to.Name = d.Name
		data = d
	}

	var subject bytes.Buffer
	if err := t.text.ExecuteTemplate(&subject, "subject", data); err != nil {
		return composed{}, fmt.Errorf("%w: subject: %w", errCompose, err)
	}
	h.SetAddressList("From", []*mail.Address{c.from})
	h.SetAddressList("To", []*mail.Address{to})
	h.SetSubject(headerText(subject.String()))
	h.SetDate(date)
	h.SetMessageID(msgID(e.MessageID))
	// RFC 3834: mark the mail as automatic so that well-behaved responders (vacation
	// replies, other ticket systems) do not answer it and start a loop.
	h.Set("Auto-Submitted", "auto-generated")
	// Exchange and Outlook honour this one instead of RFC 3834 ([MS-OXCMAIL] 2.2.3.2.14).
	h.Set("X-Auto-Response-Suppress", "All")

	var buf bytes.Buffer
	w, err := gomail.CreateInlineWriter(&buf, h)
	if err != nil {
		return composed{}, fmt.Errorf("%w: %w", errCompose, err)
	}
	parts := []struct {
		ctype string
		exec  func(io.Writer) error
	}{
		{"text/plain", func(w io.Writer) error { return t.text.Execute(w, data) }},
		{"text/html", func(w io.Writer) error { return t.html.Execute(w, data) }},
	}
	for _, p := range parts {
		var ph gomail.InlineHeader
		ph.SetContentType(p.ctype, map[string]string{"charset": "utf-8"})
		pw, err := w.CreatePart(ph)
		if err != nil {
			return composed{}, fmt.Errorf("%w: %w", errCompose, err)
		}
		if err := p.exec(pw); err != nil {
			return composed{}, fmt.Errorf("%w: %s body: %w", errCompose, p.ctype, err)
		}
		if err := pw.Close(); err != nil {
			return composed{}, fmt.Errorf("%w: %w", errCompose, err)
		}
	}
	if err := w.Close(); err != nil {
		return composed{}, fmt.Errorf("%w: %w", errCompose, err)
	}
	return composed{from: c.from.Address, to: to.Address, msg: buf.Bytes()}, nil
}

// msgID strips the angle brackets go-message adds itself.
func msgID(id string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(id), "<"), ">")
}

// maxHeaderText bounds a subject or display name, in runes.
const maxHeaderText = 200

// headerText makes untrusted text safe for a header field, and one line in a body: every control character
// (CR and LF above all, which would start a new header field, RFC 5322 2.2) and the
// Unicode line and paragraph separators become a space, runs of space collapse, and
// the text is cut to a readable length. go-message then encodes non-ASCII as RFC 2047
// words and refuses CR/LF in any value as a last line of defence.
func headerText(s string) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) || r == '\u2028' || r == '\u2029' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
			n++
		}
		space = false
		if n >= maxHeaderText {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

func channelName(source casebook.Source) string {
	switch source {
	case casebook.SourceEmail:
		return "email"
	case casebook.SourceSlack:
		return "Slack"
	case casebook.SourceDiscord:
		return "Discord"
	case casebook.SourceWeb:
		return "the web page"
	case casebook.SourceSystem:
		return "casebook"
	}
	return string(source)
}
