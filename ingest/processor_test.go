package ingest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
	"github.com/casebookhq/casebook/ingest"
	"github.com/casebookhq/casebook/ingest/mail"
	"github.com/casebookhq/casebook/ingest/senderauth"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const replyAddress = "support@support.example"

var tokenKey = []byte("0123456789abcdef0123456789abcdef")

// fixture is a database with one org (acme.example), a registered contact, staff, an
// open case with one case mail in the outbox, and a processor over it all.
type fixture struct {
	st        *postgres.Store
	blobs     *blob.Store
	svc       *casebook.Service
	p         *ingest.MailProcessor
	signer    *casebook.TokenSigner
	c         casebook.Case
	contact   casebook.User
	outsider  casebook.User
	caseMsgID string
}

func newFixture(t testing.TB, lim mail.Limits) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{st: pgtest.Store(t)}
	var err error
	if f.blobs, err = blob.Open(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if f.signer, err = casebook.NewTokenSigner(tokenKey); err != nil {
		t.Fatal(err)
	}
	org, err := f.st.AddOrg(ctx, "Acme Health", "acme.example")
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.st.AddOrg(ctx, "Other Clinic", "other.example")
	if err != nil {
		t.Fatal(err)
	}
	if f.contact, err = f.st.AddUser(ctx, postgres.NewUser{OrgID: &org.ID, Email: "alice@acme.example", Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	if f.outsider, err = f.st.AddUser(ctx, postgres.NewUser{OrgID: &other.ID, Email: "mallory@other.example"}); err != nil {
		t.Fatal(err)
	}
	owner, err := f.st.AddUser(ctx, postgres.NewUser{Staff: true, Email: "sam@support.example", Name: "Sam"})
	if err != nil {
		t.Fatal(err)
	}
	f.caseMsgID = casebook.NewMessageID("support.example")
	f.c, err = f.st.OpenCase(ctx, postgres.NewCase{OrgID: org.ID, RequesterID: f.contact.ID, OwnerID: owner.ID, Subject: "Lab results"},
		func(c casebook.Case) casebook.OutboxMail {
			return casebook.OutboxMail{Kind: casebook.MailCaseEmail, CaseID: &c.ID, Recipient: "alice@acme.example", MessageID: f.caseMsgID,
				Data: casebook.CaseEmail{Case: casebook.DefaultRefFormat.Format(c.Number), Subject: c.Subject, Event: casebook.CaseOpened}}
		})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = casebook.NewService(f.st, f.blobs, casebook.Options{MaxFileSize: lim.MaxAttachmentSize})
	f.p = ingest.NewProcessor(f.svc, f.st, f.blobs, ingest.ProcessorOptions{ReplyAddress: replyAddress, Tokens: f.signer, Limits: lim,
		Verifier: senderauth.New(senderauth.Options{TrustedIDs: []string{trustedID}})})
	return f
}

// trustedID is the receiving server the fixture's processor believes.
const trustedID = "mx.support.example"

// passed is the trusted server's word that mail from domain passed DMARC.
func passed(domain string) string {
	return "Authentication-Results: " + trustedID + "; dkim=pass header.d=" + domain + "; dmarc=pass (p=reject) header.from=" + domain
}

func (f *fixture) ref() string { return casebook.DefaultRefFormat.Format(f.c.Number) }

func (f *fixture) tokenAddress(t testing.TB, caseNumber, userID int64) string {
	addr, err := casebook.PlusAddress(replyAddress, f.signer.Sign(casebook.ReplyToken{CaseNumber: caseNumber, UserID: userID}))
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// msg builds a mail; headers are "Key: value" lines, attachments name => content.
type msg struct {
	headers []string
	body    string
	files   []file
}

type file struct {
	name, contentType string
	data              []byte
}

func (m msg) bytes() []byte {
	var b bytes.Buffer
	for _, h := range m.headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\n")
	if len(m.files) == 0 {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n" + m.body + "\r\n")
		return b.Bytes()
	}
	b.WriteString("Content-Type: multipart/mixed; boundary=BOUNDARY\r\n\r\n--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(m.body + "\r\n")
	for _, f := range m.files {
		fmt.Fprintf(&b, "--BOUNDARY\r\nContent-Type: %s\r\nContent-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n", f.contentType, f.name)
		enc := base64.StdEncoding.EncodeToString(f.data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--BOUNDARY--\r\n")
	return b.Bytes()
}

var pdf = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")

func TestProcess(t *testing.T) {
	f := newFixture(t, mail.Limits{MaxAttachmentSize: 1 << 20, MaxParts: 10})
	tok := f.tokenAddress(t, f.c.Number, f.contact.ID)
	ref := f.ref()
	tests := []struct {
		name      string
		msg       msg
		want      ingest.Result
		matchedBy string
		files     int
	}{
		{
			name: "reply token from the contact",
			msg: msg{headers: []string{"From: Alice <alice@acme.example>", "To: <" + tok + ">", "Subject: Re: the scans", "Message-ID: <r1@acme.example>"},
				body: "Here they are.\r\n\r\nOn Mon, Sam wrote:\r\n> send them", files: []file{{"scan.pdf", "application/pdf", pdf}}},
			want: ingest.Result{Disposition: ingest.Processed, Case: ref}, matchedBy: ingest.MatchedByToken, files: 1,
		},
		{
			name: "reply token in Delivered-To from an unregistered address of the org's domain",
			msg:  msg{headers: []string{"Delivered-To: " + tok, "From: bob@acme.example", "To: support@support.example", "Subject: scans", "Message-ID: <r2@acme.example>"}, body: "x"},
			want: ingest.Result{Disposition: ingest.Processed, Case: ref}, matchedBy: ingest.MatchedByToken,
		},
		{
			name: "valid reply token from outside the org",
			msg:  msg{headers: []string{"From: mallory@other.example", "Cc: " + tok, "Subject: hi", "Message-ID: <r3@other.example>"}, body: "x"},
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeNotAllowed, Case: ref}, matchedBy: ingest.MatchedByToken,
		},
		{
			name: "threading from an unregistered address of the org's domain",
			msg: msg{headers: []string{"From: carol@acme.example", "To: support@support.example", "Subject: Re: your mail",
				"In-Reply-To: " + f.caseMsgID, "Message-ID: <r4@acme.example>"}, body: "x"},
			want: ingest.Result{Disposition: ingest.Processed, Case: ref}, matchedBy: ingest.MatchedByThread,
		},
		{
			name: "threading through References",
			msg: msg{headers: []string{"From: alice@acme.example", "To: support@support.example", "Subject: Re: your mail",
				"References: <unrelated@elsewhere.example> " + f.caseMsgID + " <another@acme.example>", "Message-ID: <r5@acme.example>"}, body: "x"},
			want: ingest.Result{Disposition: ingest.Processed, Case: ref}, matchedBy: ingest.MatchedByThread,
		},
		{
			name: "subject from a registered contact",
			msg:  msg{headers: []string{passed("acme.example"), "From: ALICE@acme.example", "To: support@support.example", "Subject: AW: [" + strings.ToLower(ref) + "] scans", "Message-ID: <r6@acme.example>"}, body: "x"},
			want: ingest.Result{Disposition: ingest.Processed, Case: ref}, matchedBy: ingest.MatchedBySubject,
		},
		{
			name: "subject from an unregistered address of the org's domain",
			msg:  msg{headers: []string{passed("acme.example"), "From: dave@acme.example", "To: support@support.example", "Subject: Re: " + ref, "Message-ID: <r7@acme.example>"}, body: "x"},
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeNotAllowed, Case: ref}, matchedBy: ingest.MatchedBySubject,
		},
		{
			name: "subject from a stranger who knows the case number",
			msg:  msg{headers: []string{passed("other.example"), "From: mallory@other.example", "To: support@support.example", "Subject: Re: " + ref, "Message-ID: <r8@other.example>"}, body: "x", files: []file{{"x.pdf", "application/pdf", pdf}}},
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeNotAllowed, Case: ref}, matchedBy: ingest.MatchedBySubject,
		},
		{
			name: "forged token falls through to the subject",
			msg: msg{headers: []string{"From: mallory@other.example", "To: support+aaaaaaaaaaaaaaaaaaaaaaaa@support.example",
				"Subject: " + ref, "Message-ID: <r9@other.example>"}, body: "x"},
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeSenderNotVerified, Case: ref}, matchedBy: ingest.MatchedBySubject,
		},
		{
			name: "unknown case",
			msg:  msg{headers: []string{passed("acme.example"), "From: alice@acme.example", "Subject: Re: CASE-999999", "Message-ID: <r10@acme.example>"}, body: "x"},
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeCaseNotFound, Case: "CASE-999999"}, matchedBy: ingest.MatchedBySubject,
		},
		{
			name: "two cases named",
			msg:  msg{headers: []string{"From: alice@acme.example", "Subject: " + ref + " and CASE-999999", "Message-ID: <r11@acme.example>"}, body: "x"},
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeAmbiguousCase}, matchedBy: ingest.MatchedBySubject,
		},
		{
			name: "no case at all, blank In-Reply-To",
			msg:  msg{headers: []string{"From: alice@acme.example", "Subject: hello", "In-Reply-To: <>", "Message-ID: <r12@acme.example>"}, body: "x"},
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeNoCaseRef}, matchedBy: ingest.MatchedBySubject,
		},
		{
			name: "out of office",
			msg:  msg{headers: []string{"From: alice@acme.example", "To: " + tok, "Auto-Submitted: auto-replied", "Subject: Out of office: " + ref, "Message-ID: <r13@acme.example>"}, body: "away"},
			want: ingest.Result{Disposition: ingest.Ignored, Code: ingest.CodeAutoReply},
		},
		{
			name: "bounce",
			msg:  msg{headers: []string{"Return-Path: <>", "From: MAILER-DAEMON@mx.acme.example", "Subject: Undelivered: " + ref, "Message-ID: <r14@mx.acme.example>"}, body: "failed"},
			want: ingest.Result{Disposition: ingest.Ignored, Code: ingest.CodeAutoReply},
		},
		{
			name: "attachment over the limit",
			msg:  msg{headers: []string{"From: alice@acme.example", "To: " + tok, "Subject: big", "Message-ID: <r15@acme.example>"}, body: "x", files: []file{{"big.bin", "application/octet-stream", make([]byte, 1<<20+1)}}},
			// The attachment is decoded only once the mail is matched, on its way into
			// the blob store: the refusal names the case it was matched to.
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeOverLimit, Case: ref}, matchedBy: ingest.MatchedByToken,
		},
		{
			name: "too many parts",
			msg: msg{headers: []string{"From: alice@acme.example", "To: " + tok, "Subject: many", "Message-ID: <r16@acme.example>"}, body: "x",
				files: func() []file {
					var fs []file
					for i := range 12 {
						fs = append(fs, file{fmt.Sprintf("f%d.txt", i), "text/plain", []byte("x")})
					}
					return fs
				}()},
			want: ingest.Result{Disposition: ingest.Quarantined, Code: ingest.CodeOverLimit},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			loc := ingest.Location{Mailbox: "INBOX", UIDValidity: 7, UID: uint32(100 + i)}
			rep, err := f.p.Handle(ctx, loc, bytes.NewReader(tt.msg.bytes()))
			if err != nil {
				t.Fatal(err)
			}
			got := rep.Result
			t.Logf("%s: %s", got.Disposition, got.Reason)
			if (got.Reason == "") != (got.Disposition == ingest.Processed) {
				t.Errorf("reason %q for %s", got.Reason, got.Disposition)
			}
			got.Reason = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s\nreason: %s", diff, rep.Reason)
			}
			if rep.MatchedBy != tt.matchedBy {
				t.Errorf("matched by %q, want %q", rep.MatchedBy, tt.matchedBy)
			}
			cp, err := f.st.Checkpoint(ctx, ingest.CheckpointChannel, ingest.CheckpointKey(loc))
			if err != nil || cp != fmt.Sprint(loc.UID) {
				t.Errorf("checkpoint = %q, %v; want %d", cp, err, loc.UID)
			}
			if tt.want.Disposition == ingest.Processed {
				id, err := f.st.UpdateIDByExternalID(ctx, casebook.SourceEmail, rep.ExternalID)
				if err != nil {
					t.Fatalf("update not stored: %v", err)
				}
				var meta []byte
				if err := f.st.DB().GetContext(ctx, &meta, `SELECT meta FROM updates WHERE id = $1`, id); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(meta), `"matched_by": "`+tt.matchedBy+`"`) || !strings.Contains(string(meta), `"raw_blob"`) {
					t.Errorf("update meta %s lacks matched_by or raw_blob", meta)
				}
				var n int
				if err := f.st.DB().GetContext(ctx, &n, `SELECT count(*) FROM attachments WHERE update_id = $1`, id); err != nil || n != tt.files {
					t.Errorf("%d attachments (%v), want %d", n, err, tt.files)
				}
				return
			}
			if _, err := f.st.UpdateIDByExternalID(ctx, casebook.SourceEmail, rep.ExternalID); !errors.Is(err, casebook.ErrNotFound) {
				t.Errorf("refused mail was stored as an update: %v", err)
			}
			items, err := f.st.Quarantine(ctx, casebook.QuarantineFilter{All: true})
			if err != nil {
				t.Fatal(err)
			}
			var found *casebook.QuarantineItem
			for i := range items {
				if items[i].ExternalID == rep.ExternalID {
					found = &items[i]
				}
			}
			if found == nil || string(found.Kind) != string(tt.want.Disposition) || found.Reason == "" || found.RawBlob == "" ||
				found.ReasonCode != string(tt.want.Code) {
				t.Fatalf("quarantine row %+v, want kind %s with reason code %s, reason and raw blob", found, tt.want.Disposition, tt.want.Code)
			}
			rc, err := f.blobs.Open(ctx, found.RawBlob)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			raw, _ := io.ReadAll(rc)
			if !bytes.Equal(raw, tt.msg.bytes()) {
				t.Error("raw blob differs from the message")
			}
		})
	}
}

func TestProcessDuplicate(t *testing.T) {
	f := newFixture(t, mail.Limits{})
	ctx := t.Context()
	m := msg{headers: []string{"From: alice@acme.example", "To: " + f.tokenAddress(t, f.c.Number, f.contact.ID), "Subject: scans", "Message-ID: <dup@acme.example>"},
		body: "x", files: []file{{"scan.pdf", "application/pdf", pdf}}}
	first := append([]byte("Received: from a by b; Tue, 24 Nov 2026 10:00:00 +0000\r\nDelivered-To: support@support.example\r\n"), m.bytes()...)
	again := append([]byte("Return-Path: <alice@acme.example>\r\nReceived: from c by d; Tue, 24 Nov 2026 10:05:00 +0000\r\n"), m.bytes()...)
	// The same Message-ID on different content is a different mail: senders reuse ids.
	reused := m
	reused.body = "another text"

	loc := ingest.Location{Mailbox: "INBOX", UIDValidity: 1, UID: 1}
	r1, err := f.p.Handle(ctx, loc, bytes.NewReader(first))
	if err != nil || r1.Duplicate || r1.Disposition != ingest.Processed {
		t.Fatalf("first: %+v, %v", r1, err)
	}
	loc.UID = 2
	r2, err := f.p.Handle(ctx, loc, bytes.NewReader(again))
	if err != nil || !r2.Duplicate || r2.Disposition != ingest.Processed || r2.ExternalID != r1.ExternalID {
		t.Fatalf("second copy: %+v, %v", r2, err)
	}
	if cp, _ := f.st.Checkpoint(ctx, ingest.CheckpointChannel, ingest.CheckpointKey(loc)); cp != "2" {
		t.Errorf("checkpoint after a duplicate = %q, want 2", cp)
	}
	loc.UID = 3
	r3, err := f.p.Handle(ctx, loc, bytes.NewReader(reused.bytes()))
	if err != nil || r3.Duplicate || r3.ExternalID == r1.ExternalID {
		t.Fatalf("reused Message-ID: %+v, %v", r3, err)
	}
	c, err := f.st.CaseByNumber(ctx, f.c.Number)
	if err != nil || c.Attachments != 2 {
		t.Errorf("case has %d attachments (%v), want 2", c.Attachments, err)
	}
}

func TestProcessClosedCase(t *testing.T) {
	f := newFixture(t, mail.Limits{})
	ctx := t.Context()
	if _, err := f.st.SetCaseStatus(ctx, f.c.Number, casebook.StatusClosed); err != nil {
		t.Fatal(err)
	}
	m := msg{headers: []string{"From: alice@acme.example", "To: " + f.tokenAddress(t, f.c.Number, f.contact.ID), "Subject: late", "Message-ID: <late@acme.example>"}, body: "x"}
	rep, err := f.p.Handle(ctx, ingest.Location{}, bytes.NewReader(m.bytes()))
	if err != nil || rep.Disposition != ingest.Quarantined || !strings.Contains(rep.Reason, "closed") {
		t.Fatalf("%+v, %v", rep, err)
	}
}

// failingStore breaks the database lookups the way an outage does, or panics.
type failingStore struct {
	ingest.ProcessorStore
	panic bool
}

func (s failingStore) CaseNumbersByMessageIDs(ctx context.Context, ids []string) ([]int64, error) {
	if s.panic {
		panic("boom")
	}
	return nil, errors.New("connection refused")
}

func TestProcessInfrastructureErrors(t *testing.T) {
	f := newFixture(t, mail.Limits{})
	ctx := t.Context()
	m := msg{headers: []string{"From: alice@acme.example", "Subject: hi", "In-Reply-To: <x@y>", "Message-ID: <i1@acme.example>"}, body: "x"}
	for _, tt := range []struct {
		name  string
		st    ingest.ProcessorStore
		panic bool
	}{
		{name: "database down", st: failingStore{ProcessorStore: f.st}},
		{name: "panic", st: failingStore{ProcessorStore: f.st, panic: true}, panic: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := ingest.NewProcessor(f.svc, tt.st, f.blobs, ingest.ProcessorOptions{ReplyAddress: replyAddress, Tokens: f.signer})
			loc := ingest.Location{Mailbox: "INBOX", UIDValidity: 9, UID: 5}
			_, err := p.Process(ctx, loc, bytes.NewReader(m.bytes()))
			if err == nil {
				t.Fatal("no error")
			}
			if tt.panic != strings.Contains(err.Error(), "panic") {
				t.Errorf("error %q", err)
			}
			if _, err := f.st.Checkpoint(ctx, ingest.CheckpointChannel, ingest.CheckpointKey(loc)); !errors.Is(err, casebook.ErrNotFound) {
				t.Errorf("checkpoint committed after a failure: %v", err)
			}
			if items, _ := f.st.Quarantine(ctx, casebook.QuarantineFilter{All: true}); len(items) != 0 {
				t.Errorf("quarantined after a failure: %+v", items)
			}
		})
	}
}

func TestRelease(t *testing.T) {
	f := newFixture(t, mail.Limits{})
	ctx := t.Context()
	m := msg{headers: []string{"From: Lab <results@lab.example>", "To: support@support.example", "Subject: results for " + f.ref(), "Message-ID: <lab@lab.example>"},
		body: "attached", files: []file{{"results.pdf", "application/pdf", pdf}}}
	rep, err := f.p.Handle(ctx, ingest.Location{}, bytes.NewReader(m.bytes()))
	if err != nil || rep.Disposition != ingest.Quarantined {
		t.Fatalf("%+v, %v", rep, err)
	}
	for range 2 {
		out, err := f.p.Release(ctx, bytes.NewReader(m.bytes()), f.c.Number, "", "Sam <sam@support.test>")
		if err != nil {
			t.Fatal(err)
		}
		c, _ := f.st.CaseByNumber(ctx, f.c.Number)
		if c.Attachments != 1 {
			t.Errorf("after release (%s) the case has %d attachments, want 1", out.Result, c.Attachments)
		}
		// The released update keeps the key the mail had when it was refused, so the
		// same mail seen again in the mailbox is a duplicate.
		var ext string
		if err := f.st.DB().Get(&ext, `SELECT external_id FROM updates WHERE id = $1`, out.UpdateID); err != nil || ext != rep.ExternalID {
			t.Errorf("released update's external id = %q, %v; want %q", ext, err, rep.ExternalID)
		}
	}
}

// TestMemoryLargeAttachment ingests one 25 MiB attachment and checks that the heap does
// not grow with it: the message is streamed from disk through both passes into the
// blob store. Every byte allocated during the call bounds the peak heap growth from
// above, so TotalAlloc is the conservative figure.
func TestMemoryLargeAttachment(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 34 MiB message")
	}
	f := newFixture(t, mail.Limits{})
	ctx := t.Context()
	path := t.TempDir() + "/big.eml"
	big := bytes.Repeat([]byte("0123456789abcdef"), (25<<20)/16)
	m := msg{headers: []string{"From: alice@acme.example", "To: " + f.tokenAddress(t, f.c.Number, f.contact.ID), "Subject: big scan", "Message-ID: <big@acme.example>"},
		body: "x", files: []file{{"big.bin", "application/octet-stream", big}}}
	if err := os.WriteFile(path, m.bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	big, m = nil, msg{}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()

	growth, total := measureHeap(func() {
		rep, err := f.p.Handle(ctx, ingest.Location{Mailbox: "INBOX", UIDValidity: 1, UID: 1}, fh)
		if err != nil || rep.Disposition != ingest.Processed || len(rep.Attachments) != 1 || rep.Attachments[0].Size != 25<<20 {
			t.Errorf("%+v, %v", rep, err)
		}
	})
	t.Logf("25 MiB attachment: peak heap growth sampled %.1f MiB, total allocated %.1f MiB", float64(growth)/(1<<20), float64(total)/(1<<20))
	if total > 32<<20 {
		t.Errorf("allocated %d MiB while ingesting a 25 MiB attachment, want <= 32 MiB", total>>20)
	}
}

func TestQuarantinePoisonMessage(t *testing.T) {
	f := newFixture(t, mail.Limits{})
	ctx := t.Context()
	m := msg{headers: []string{"From: alice@acme.example", "To: " + f.tokenAddress(t, f.c.Number, f.contact.ID), "Subject: crashes us", "Message-ID: <poison@acme.example>"}, body: "x"}
	loc := ingest.Location{Mailbox: "INBOX", UIDValidity: 3, UID: 42}
	res, err := f.p.Quarantine(ctx, loc, bytes.NewReader(m.bytes()), "failed 3 times: boom")
	if err != nil || res.Disposition != ingest.Quarantined || res.Code != ingest.CodeFailedRepeatedly || res.Reason != "failed 3 times: boom" {
		t.Fatalf("%+v, %v", res, err)
	}
	items, err := f.st.Quarantine(ctx, casebook.QuarantineFilter{})
	if err != nil || len(items) != 1 || items[0].Subject != "crashes us" || items[0].RawBlob == "" {
		t.Fatalf("quarantine: %+v, %v", items, err)
	}
	if cp, _ := f.st.Checkpoint(ctx, ingest.CheckpointChannel, ingest.CheckpointKey(loc)); cp != "42" {
		t.Errorf("checkpoint %q, want 42", cp)
	}
}

// BenchmarkHandle measures one reply with a 100 KB attachment handled end to end:
// digest, parse, the raw copy and the attachment into the blob store (each fsynced),
// and the commit in PostgreSQL with its checkpoint.
func BenchmarkHandle(b *testing.B) {
	f := newFixture(b, mail.Limits{})
	tok := f.tokenAddress(b, f.c.Number, f.contact.ID)
	data := bytes.Repeat([]byte("casebook benchmark payload\n"), 100_000/27)
	var i uint32
	for b.Loop() {
		i++
		// Each message differs, as each reply would: no duplicate short-cut.
		m := msg{headers: []string{"From: alice@acme.example", "To: " + tok, "Subject: scan", fmt.Sprintf("Message-ID: <bench-%d@acme.example>", i)},
			body: "here", files: []file{{"scan.pdf", "application/pdf", append(slices.Clip(data), fmt.Sprint(i)...)}}}
		rep, err := f.p.Handle(b.Context(), ingest.Location{Mailbox: "INBOX", UIDValidity: 1, UID: i}, bytes.NewReader(m.bytes()))
		if err != nil || rep.Disposition != ingest.Processed {
			b.Fatalf("%+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// BenchmarkHandleParallel is BenchmarkHandle with eight messages in flight, as a
// pipelining poller runs them: the fsyncs of the blob store and of PostgreSQL overlap.
func BenchmarkHandleParallel(b *testing.B) {
	f := newFixture(b, mail.Limits{})
	tok := f.tokenAddress(b, f.c.Number, f.contact.ID)
	data := bytes.Repeat([]byte("casebook benchmark payload\n"), 100_000/27)
	var n atomic.Uint32
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			m := msg{headers: []string{"From: alice@acme.example", "To: " + tok, "Subject: scan", fmt.Sprintf("Message-ID: <bench-%d@acme.example>", i)},
				body: "here", files: []file{{"scan.pdf", "application/pdf", append(slices.Clip(data), fmt.Sprint(i)...)}}}
			rep, err := f.p.Handle(context.Background(), ingest.Location{Mailbox: "INBOX", UIDValidity: 1, UID: i}, bytes.NewReader(m.bytes()))
			if err != nil || rep.Disposition != ingest.Processed {
				b.Errorf("%+v, %v", rep, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// A disabled contact's mail is quarantined with the reason, even with a valid reply
// token, which alone would let any contact of the org write.
func TestProcessDisabledSender(t *testing.T) {
	f := newFixture(t, mail.Limits{})
	ctx := t.Context()
	if _, err := f.st.SetUserDisabled(ctx, f.contact.ID, true); err != nil {
		t.Fatal(err)
	}
	for i, to := range []string{f.tokenAddress(t, f.c.Number, f.contact.ID), replyAddress} {
		m := msg{headers: []string{passed("acme.example"), "From: alice@acme.example", "To: " + to, "Subject: Re: [" + f.ref() + "] Lab results",
			fmt.Sprintf("Message-ID: <disabled%d@acme.example>", i)}, body: "here", files: []file{{"a.pdf", "application/pdf", pdf}}}
		rep, err := f.p.Handle(ctx, ingest.Location{}, bytes.NewReader(m.bytes()))
		if err != nil || rep.Disposition != ingest.Quarantined || !strings.Contains(rep.Reason, "account is disabled") {
			t.Errorf("mail %d: %+v, %v", i, rep, err)
		}
	}
	if as, _ := f.st.AttachmentsForCase(ctx, f.c.ID); len(as) != 0 {
		t.Errorf("the disabled contact's file was attached")
	}
}
