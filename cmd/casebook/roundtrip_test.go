package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/outbox/smtptest"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/ingest"
	"github.com/casebookhq/casebook/ingest/imap/dovecottest"
)

// mailUsers maps the addresses of the round trip to Dovecot users and their passwords.
var mailUsers = map[string][2]string{
	"support@support.test": {"support", "pw-support"},
	"alice@acme.test":      {"alice", "pw-alice"},
	"sam@support.test":     {"sam", "pw-sam"},
}

// imapAppend stores raw in a user's INBOX, as an MTA's final delivery would.
func imapAppend(addr, user, pass string, raw []byte) error {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		return err
	}
	cmd := c.Append("INBOX", int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	if _, err := cmd.Wait(); err != nil {
		return err
	}
	return c.Logout().Wait()
}

// inbox returns every message in a user's INBOX.
func inbox(t *testing.T, addr, user, pass string) [][]byte {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	var set imap.SeqSet
	set.AddRange(1, sel.NumMessages)
	msgs, err := c.Fetch(set, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, m := range msgs {
		for _, b := range m.BodySection {
			out = append(out, b.Bytes)
		}
	}
	return out
}

// waitMail waits until a message whose Subject contains subject is in the user's
// INBOX and returns its header.
func waitMail(t *testing.T, ctx context.Context, addr, user, pass, subject string) (gomail.Header, []byte) {
	t.Helper()
	for {
		for _, raw := range inbox(t, addr, user, pass) {
			r, err := gomail.CreateReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if s, _ := r.Header.Subject(); strings.Contains(s, subject) {
				return r.Header, raw
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no mail %q for %s: %v", subject, user, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestRoundTrip is the round trip: a case email goes out through SMTP into
// the requester's Dovecot mailbox; her reply, with an attachment as a mail client
// writes it, goes to the signed reply address, which lands in the support mailbox;
// the IMAP poller puts it on the case by that address, and the owner's notification
// of the file goes out to his mailbox.
func TestRoundTrip(t *testing.T) {
	dove := dovecottest.Start(t)
	for _, u := range mailUsers {
		dove.AddUser(u[0], u[1])
	}
	var delivered sync.Map
	srv := smtptest.Start(t, smtptest.Options{Deliver: func(m smtptest.Message) error {
		for _, rcpt := range m.To {
			u, ok := mailUsers[strings.ToLower(rcpt)]
			if !ok && casebook.TokenFromAddress("support@support.test", rcpt) != "" {
				u, ok = mailUsers["support@support.test"]
			}
			if !ok {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox " + rcpt}
			}
			if err := imapAppend(dove.Addr(), u[0], u[1], m.Data); err != nil {
				return err
			}
			delivered.Store(rcpt, true)
		}
		return nil
	}})

	c := newCLI(t)
	c.json("migrate")
	c.json("org", "add", "Acme Health", "--domain", "acme.test")
	c.json("user", "add", "--org", "Acme Health", "--email", "alice@acme.test", "--name", "Alice")
	c.json("user", "add", "--staff", "--email", "sam@support.test", "--name", "Sam")
	c.json("case", "open", "--org", "Acme Health", "--requester", "alice@acme.test", "--owner", "sam@support.test", "--subject", "Lab results")

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- run(serveCtx, []string{"serve", "--database-url", c.url, "--data-dir", c.dir, "--admin", "", "--http", "",
			"--smtp", "smtp://" + srv.Addr + "?tls=none", "--mail-from", "Acme Support <support@support.test>",
			"--reply-address", "support@support.test", "--token-key", testTokenKey, "--base-url", "https://cases.test",
			"--imap", dove.URL("support", "INBOX")}, &out, &errb)
	}()
	defer func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("serve: exit %d: %s", code, errb.String())
		}
	}()

	// 1. The case email reaches Alice's mailbox.
	h, _ := waitMail(t, ctx, dove.Addr(), "alice", "pw-alice", "[CASE-000001] Lab results")
	replyTo, err := h.AddressList("Reply-To")
	if err != nil || len(replyTo) != 1 || !strings.HasPrefix(replyTo[0].Address, "support+") {
		t.Fatalf("Reply-To = %v, %v", replyTo, err)
	}
	caseMailID, _ := h.MessageID()

	// 2. Alice replies from her mail client: to the Reply-To, threaded, with a PDF.
	pdf := []byte("%PDF-1.4\n% lab report for Alice\n" + strings.Repeat("0123456789", 300) + "\n%%EOF\n")
	reply := replyMail(t, replyTo[0].Address, caseMailID, pdf)
	sender, err := smtpDial(ctx, srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.SendMail("alice@acme.test", []string{replyTo[0].Address}, bytes.NewReader(reply)); err != nil {
		t.Fatal(err)
	}
	sender.Quit()

	// 3. The poller puts it on CASE-000001, and Sam is told of the file.
	nh, raw := waitMail(t, ctx, dove.Addr(), "sam", "pw-sam", "[CASE-000001] 1 new file")
	if got := nh.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("notification Auto-Submitted = %q", got)
	}
	if !bytes.Contains(raw, []byte("lab-report.pdf")) || bytes.Contains(raw, []byte("lab report for Alice")) {
		t.Errorf("notification must name the file and not carry it:\n%s", raw)
	}
	shown := c.json("case", "show", "CASE-000001")
	atts, _ := shown["attachments"].([]any)
	if len(atts) != 1 || atts[0].(map[string]any)["filename"] != "lab-report.pdf" || atts[0].(map[string]any)["size"] != float64(len(pdf)) {
		t.Fatalf("attachments = %v", atts)
	}
	var by string
	st, err := postgres.Open(ctx, c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.DB().GetContext(ctx, &by, `SELECT meta->>'matched_by' FROM updates WHERE source = 'email'`); err != nil {
		t.Fatal(err)
	}
	if by != ingest.MatchedByToken {
		t.Errorf("matched by %q, want the reply address (%s)", by, ingest.MatchedByToken)
	}
	if _, ok := delivered.Load("sam@support.test"); !ok {
		t.Error("the notification was not delivered through SMTP")
	}
}

// replyMail writes a reply the way mail clients do: Re: subject, In-Reply-To and
// References, a text part quoting nothing, and the file as a base64 attachment.
func replyMail(t *testing.T, to, inReplyTo string, pdf []byte) []byte {
	t.Helper()
	var h gomail.Header
	h.SetAddressList("From", []*gomail.Address{{Name: "Alice", Address: "alice@acme.test"}})
	h.SetAddressList("To", []*gomail.Address{{Name: "Acme Support", Address: to}})
	h.SetSubject("Re: [CASE-000001] Lab results")
	h.SetDate(time.Now())
	h.SetMessageID(fmt.Sprintf("reply-%d@acme.test", time.Now().UnixNano()))
	h.SetMsgIDList("In-Reply-To", []string{inReplyTo})
	h.SetMsgIDList("References", []string{inReplyTo})
	var buf bytes.Buffer
	w, err := gomail.CreateWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	var th gomail.InlineHeader
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	tw, err := w.CreateSingleInline(th)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(tw, "Hello,\n\nhere is the lab report you asked for.\n\nAlice\n")
	tw.Close()
	var ah gomail.AttachmentHeader
	ah.SetContentType("application/pdf", nil)
	ah.SetFilename("lab-report.pdf")
	aw, err := w.CreateAttachment(ah)
	if err != nil {
		t.Fatal(err)
	}
	aw.Write(pdf)
	aw.Close()
	w.Close()
	return buf.Bytes()
}

// smtpDial opens a cleartext session to the local test server, as a mail client on
// the same machine would.
func smtpDial(ctx context.Context, addr string) (*smtp.Client, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { c.Close() })
	return c, nil
}
