package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/outbox"
	"github.com/casebookhq/casebook/casebook/outbox/smtptest"
	"github.com/casebookhq/casebook/ingest"
)

// TestBrowserStaff drives Chromium through a staff member's day: log in and enrol the
// second factor, open the quarantine from the header, release a mail to the case it
// named; the customer logs in and sees its file; the staff member replies from the
// case page; the outbox sends the reply over SMTP with a reply address, and the
// customer's answer to it, through the mail processor, lands on the same case.
func TestBrowserStaff(t *testing.T) {
	exe := chromium(t)
	e := newEnv(t)
	ctx := newBrowser(t, exe)
	b := &tab{t: t, ctx: ctx, base: e.ts.URL, dir: shotsDir("staff")}
	shot, do, text := b.shot, b.do, b.text
	ref := e.ref(e.case1)
	qid := e.quarantineMail("b1")

	login := func(what, email, pw, wait string) {
		t.Helper()
		do(what,
			chromedp.Navigate(e.ts.URL+"/login"),
			chromedp.WaitVisible(chromedp.CSS("#email")),
			chromedp.SendKeys(chromedp.CSS("#email"), email),
			chromedp.SendKeys(chromedp.CSS("#password"), pw),
			chromedp.Submit(chromedp.CSS(`form[action="/login"]`)),
			chromedp.WaitVisible(chromedp.CSS(wait)),
		)
	}
	logout := func() {
		t.Helper()
		do("log out",
			chromedp.Click(chromedp.CSS(`header form[action="/logout"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)),
		)
	}

	// Staff must have a second factor before any staff page.
	login("staff logs in", e.sam.Email, samPW, "#secret")
	secret := strings.ReplaceAll(text("#secret"), " ", "")
	do("enrol",
		chromedp.SendKeys(chromedp.CSS("#code"), totpAt(secret, time.Now())),
		chromedp.Submit(chromedp.CSS(`main form`)),
		chromedp.WaitVisible(chromedp.CSS("#continue")),
		chromedp.Click(chromedp.CSS("#continue")),
		chromedp.WaitVisible(chromedp.CSS("table.cases")),
	)
	e.secrets[e.sam.Email] = secret
	if n := text(`header a[href="/quarantine"] .count`); n != "1" {
		t.Errorf("quarantine count in the header: %q", n)
	}
	do("open the quarantine from the header",
		chromedp.Click(chromedp.CSS(`header a[href="/quarantine"]`)),
		chromedp.WaitVisible(chromedp.CSS("table.cases")),
	)
	shot("quarantine")
	do("open the mail",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`a[href="/quarantine/%d"]`, qid))),
		chromedp.WaitVisible(chromedp.CSS("#case")),
	)
	shot("quarantined-mail")
	prefilled, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#case")))
	if err != nil || prefilled != ref {
		t.Errorf("case field prefilled with %q (%v), want %s", prefilled, err, ref)
	}
	do("release it to the case",
		chromedp.Submit(chromedp.CSS(`form[action$="/release"]`)),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
	)
	if n := text("p.notice"); n != "The mail was added to "+ref+"." {
		t.Errorf("after the release: %q", n)
	}
	shot("released")
	logout()

	login("the customer logs in", e.alice.Email, alicePW, "table.cases")
	do("open the case",
		chromedp.Click(chromedp.CSS(`a[href="/cases/`+ref+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("table.files")),
	)
	if files := text("table.files"); !strings.Contains(files, "scan-b1.pdf") {
		t.Errorf("the customer does not see the released file: %q", files)
	}
	shot("customer-sees-file")
	logout()

	login("staff logs in again", e.sam.Email, samPW, "#code")
	do("with a code",
		chromedp.SendKeys(chromedp.CSS("#code"), e.totpCode(e.sam.Email)),
		chromedp.Submit(chromedp.CSS(`main form`)),
		chromedp.WaitVisible(chromedp.CSS("table.cases")),
		chromedp.Click(chromedp.CSS(`a[href="/cases/`+ref+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#reply-body")),
		chromedp.SendKeys(chromedp.CSS("#reply-body"), "Thank you, the scans arrived. We will call you tomorrow."),
		chromedp.Submit(chromedp.CSS(`form[action$="/reply"]`)),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
	)
	if n := text("p.notice"); n != "Reply sent to "+e.alice.Email+"." {
		t.Errorf("after the reply: %q", n)
	}
	shot("replied")

	// The outbox sends the reply.
	signer := must(casebook.NewTokenSigner(bytes.Repeat([]byte("k"), 32)))
	srv := smtptest.Start(t, smtptest.Options{})
	d := must(outbox.ParseURL("smtp://" + srv.Addr + "?tls=none"))
	w := must(outbox.New(e.st, d, outbox.Options{From: "Support <support@support.test>", ReplyAddress: "support@support.test",
		Signer: signer, BaseURL: e.ts.URL, Poll: 20 * time.Millisecond}))
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	var reply, notice *smtptest.Message
	for deadline := time.After(20 * time.Second); reply == nil || notice == nil; {
		select {
		case <-srv.Arrived():
		case <-deadline:
			t.Fatalf("mail did not arrive: %d messages", len(srv.Messages()))
		}
		for _, m := range srv.Messages() {
			switch {
			case m.Contains("We will call you tomorrow"):
				reply = &m
			case m.Contains("scan-b1.pdf"):
				notice = &m
			}
		}
	}
	stop()
	<-done
	// The owner's notification of the released file links to the case page.
	if !notice.Contains(e.ts.URL+"/cases/"+ref) || notice.To[0] != e.sam.Email {
		t.Errorf("owner notification: to %v\n%s", notice.To, notice.Data)
	}
	msg := must(mail.ReadMessage(bytes.NewReader(reply.Data)))
	replyTo := must(mail.ParseAddress(msg.Header.Get("Reply-To")))
	if reply.To[0] != e.alice.Email || !strings.HasPrefix(replyTo.Address, "support+") {
		t.Fatalf("reply mail: to %v, Reply-To %q", reply.To, replyTo.Address)
	}

	// The customer answers it; the answer names no case in its subject.
	answer := "From: Alice <alice@acme.test>\r\nTo: " + replyTo.Address + "\r\nSubject: Re: your message\r\n" +
		"Message-ID: <answer-1@acme.test>\r\nIn-Reply-To: " + msg.Header.Get("Message-ID") + "\r\n\r\nTomorrow is fine.\r\n"
	p := ingest.NewProcessor(e.svc, e.st, e.blobs, ingest.ProcessorOptions{ReplyAddress: "support@support.test", Tokens: signer})
	rep, err := p.Handle(context.Background(), ingest.Location{}, strings.NewReader(answer))
	if err != nil || rep.Disposition != ingest.Processed || rep.CaseNumber != e.case1.Number || rep.MatchedBy != ingest.MatchedByToken {
		t.Fatalf("the answer: %+v, %v", rep, err)
	}
	do("staff sees the answer",
		chromedp.Navigate(e.ts.URL+"/cases/"+ref),
		chromedp.WaitVisible(chromedp.CSS("ol.timeline")),
	)
	if tl := text("ol.timeline"); !strings.Contains(tl, "Tomorrow is fine.") || !strings.Contains(tl, "We will call you tomorrow") {
		t.Errorf("timeline: %q", tl)
	}
	shot("answer")
}
