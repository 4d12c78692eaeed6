package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/casebookhq/casebook/casebook/outbox/smtptest"
)

const testTokenKey = "0123456789abcdef0123456789abcdef"

// outboxRows runs `outbox list --json` with extra args and decodes each line.
func (c *cli) outboxRows(args ...string) []map[string]any {
	c.t.Helper()
	code, out, errOut := c.run(append([]string{"outbox", "list", "--json"}, args...)...)
	if code != 0 {
		c.t.Fatalf("outbox list: exit %d: %s", code, errOut)
	}
	var rows []map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			c.t.Fatal(err)
		}
		rows = append(rows, m)
	}
	return rows
}

func TestCaseOpenAndReplyQueueCaseMail(t *testing.T) {
	c := newCLI(t)
	c.json("migrate")
	c.json("org", "add", "Acme Health")
	c.json("user", "add", "--org", "Acme Health", "--email", "alice@acme.test", "--name", "Alice")
	c.json("user", "add", "--staff", "--email", "sam@support.test", "--name", "Sam")
	c.json("case", "open", "--org", "Acme Health", "--requester", "alice@acme.test", "--owner", "sam@support.test", "--subject", "Lab results")
	reply := c.json("case", "reply", "CASE-000001", "--body", "We got your files.\nThanks!")
	if reply["to"] != "alice@acme.test" {
		t.Errorf("case reply = %v", reply)
	}

	var caseMails []map[string]any
	for _, r := range c.outboxRows() {
		if r["kind"] == "case_email" {
			caseMails = append(caseMails, r)
		}
		if d, _ := r["data"].(map[string]any); d["password"] != nil {
			t.Errorf("outbox list shows a password: %v", r)
		}
	}
	if len(caseMails) != 2 {
		t.Fatalf("%d case emails queued, want 2 (opened, reply)", len(caseMails))
	}
	// Newest first: the reply, then the opening mail it threads to.
	replied, opened := caseMails[0]["data"].(map[string]any), caseMails[1]["data"].(map[string]any)
	if opened["event"] != "opened" || replied["event"] != "reply" || replied["body"] != "We got your files.\nThanks!" || replied["author"] != "Sam" {
		t.Errorf("case emails: %v / %v", opened, replied)
	}
	if replied["in_reply_to"] != caseMails[1]["message_id"] || caseMails[0]["message_id"] != reply["message_id"] {
		t.Errorf("reply threads to %v, want %v", replied["in_reply_to"], caseMails[1]["message_id"])
	}
	for _, m := range caseMails {
		if m["recipient"] != "alice@acme.test" || m["status"] != "pending" || m["case_number"] != 1.0 {
			t.Errorf("row %v", m)
		}
	}
	shown := c.json("case", "show", "CASE-000001")
	tl, _ := shown["timeline"].([]any)
	if len(tl) != 1 || tl[0].(map[string]any)["source"] != "system" || !strings.Contains(tl[0].(map[string]any)["author"].(string), "sam@support.test") {
		t.Errorf("timeline = %v", tl)
	}

	if code, _, errOut := c.run("case", "reply", "CASE-000001", "--body", "hi", "--as", "alice@acme.test"); code == 0 || !strings.Contains(errOut, "not staff") {
		t.Errorf("reply as a customer: exit %d, %s", code, errOut)
	}
	if code, _, _ := c.run("case", "reply", "CASE-000001"); code != 2 {
		t.Errorf("reply without --body: exit %d, want 2", code)
	}
	if code, _, _ := c.run("outbox", "list", "--status", "lost"); code != 2 {
		t.Errorf("outbox list --status lost: exit %d, want 2", code)
	}
}

// TestServeSendsQueuedMail runs `casebook serve` with only the outbox configured: the
// queued mails go to a local SMTP server, and a refused one shows in
// `outbox list --failed` with the server's reply.
func TestServeSendsQueuedMail(t *testing.T) {
	c := newCLI(t)
	srv := smtptest.Start(t, smtptest.Options{})
	srv.SetReply(func(m smtptest.Message) error {
		if m.To[0] == "bob@acme.test" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
		}
		return nil
	})
	c.json("migrate")
	c.json("org", "add", "Acme Health")
	c.json("user", "add", "--org", "Acme Health", "--email", "alice@acme.test")
	c.json("user", "add", "--org", "Acme Health", "--email", "bob@acme.test")
	c.json("user", "add", "--staff", "--email", "sam@support.test")
	c.json("case", "open", "--org", "Acme Health", "--requester", "alice@acme.test", "--owner", "sam@support.test", "--subject", "Lab results")
	c.json("case", "open", "--org", "Acme Health", "--requester", "bob@acme.test", "--owner", "sam@support.test", "--subject", "Referral")
	want := len(c.outboxRows())

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int)
	var out, errb bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--database-url", c.url, "--data-dir", c.dir, "--admin", "", "--http", "",
			"--smtp", "smtp://" + srv.Addr + "?tls=none", "--mail-from", "Acme Support <support@support.test>",
			"--reply-address", "support@support.test", "--token-key", testTokenKey, "--base-url", "https://cases.test"}, &out, &errb)
	}()
	for settled := false; !settled; {
		select {
		case code := <-done:
			t.Fatalf("serve stopped early: exit %d: %s", code, errb.String())
		case <-srv.Arrived():
		case <-time.After(100 * time.Millisecond):
		}
		settled = len(c.outboxRows("--status", "pending")) == 0
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve: exit %d: %s", code, errb.String())
	}
	failed := c.outboxRows("--failed")
	if got := len(srv.Messages()); got+len(failed) != want {
		t.Errorf("%d mails delivered and %d failed, want %d in all", got, len(failed), want)
	}
	if len(failed) == 0 {
		t.Fatal("no failed mail")
	}
	for _, f := range failed {
		if f["recipient"] != "bob@acme.test" || f["last_error"] != "smtp 550 5.1.1 No such user here" {
			t.Errorf("outbox list --failed: %v", f)
		}
	}
	for _, m := range srv.Messages() {
		if m.To[0] == "bob@acme.test" {
			t.Errorf("a mail to bob was accepted")
		}
	}
	code, human, _ := c.run("outbox", "list", "--failed")
	if code != 0 || !strings.Contains(human, "case_email") || !strings.Contains(human, "smtp 550 5.1.1 No such user here") {
		t.Errorf("outbox list --failed: %d\n%s", code, human)
	}
}

func TestServeRefusesIncompleteMailConfig(t *testing.T) {
	c := newCLI(t)
	c.json("migrate")
	code, _, errOut := c.run("serve", "--admin", "", "--smtp", "smtp://127.0.0.1:1?tls=none")
	if code == 0 || !strings.Contains(errOut, "--base-url, --mail-from") || strings.Contains(errOut, "--token-key") {
		t.Errorf("serve without --mail-from: exit %d: %s", code, errOut)
	}
	code, _, errOut = c.run("serve", "--admin", "", "--smtp", "smtp://mail.example.com?tls=none", "--mail-from", "a@b.test",
		"--reply-address", "s@b.test", "--token-key", testTokenKey, "--base-url", "https://x.test")
	if code == 0 || !strings.Contains(errOut, "loopback") {
		t.Errorf("serve with cleartext SMTP to a remote host: exit %d: %s", code, errOut)
	}
}
