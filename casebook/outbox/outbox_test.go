package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/outbox/smtptest"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// clock is the workers' time; tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	st        *postgres.Store
	srv       *smtptest.Server
	clock     *clock
	signer    *casebook.TokenSigner
	svc       *casebook.Service
	c         casebook.Case
	owner     casebook.User
	requester casebook.User
}

// testExpiry is when the tests' temporary passwords expire: well after the tests' clock.
var testExpiry = time.Now().Add(48 * time.Hour).UTC().Truncate(time.Minute)

const (
	testFrom    = "Acme Support <support@casebook.test>"
	testReply   = "support@casebook.test"
	testBaseURL = "https://casebook.test"
)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := t.Context()
	st := pgtest.Store(t)
	org, err := st.AddOrg(ctx, "Acme Health", "acme.example")
	if err != nil {
		t.Fatal(err)
	}
	owner, err := st.AddUser(ctx, postgres.NewUser{Email: "sam@support.example", Name: "Sam", Staff: true})
	if err != nil {
		t.Fatal(err)
	}
	req, err := st.AddUser(ctx, postgres.NewUser{OrgID: &org.ID, Email: "alice@acme.example", Name: "Alice"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.OpenCase(ctx, postgres.NewCase{OrgID: org.ID, RequesterID: req.ID, OwnerID: owner.ID, Subject: "Lab results"})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := casebook.NewTokenSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		st:        st,
		srv:       smtptest.Start(t, smtptest.Options{}),
		clock:     &clock{t: time.Now().Add(time.Minute)},
		signer:    signer,
		svc:       casebook.NewService(st, blobs, casebook.Options{Refs: casebook.DefaultRefFormat, MessageIDDomain: "casebook.test"}),
		c:         c,
		owner:     owner,
		requester: req,
	}
}

func (f *fixture) worker(t testing.TB, store Store, mod func(*Options)) *Worker {
	t.Helper()
	d, err := ParseURL("smtp://" + f.srv.Addr + "?tls=none")
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{
		From:         testFrom,
		ReplyAddress: testReply,
		Signer:       f.signer,
		BaseURL:      testBaseURL,
		Now:          f.clock.Now,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	if mod != nil {
		mod(&opt)
	}
	if store == nil {
		store = f.st
	}
	w, err := New(store, d, opt)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// drain runs claims until nothing is due.
func drain(t *testing.T, w *Worker) {
	t.Helper()
	for {
		n, err := w.sendDue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func (f *fixture) caseEmail(t *testing.T, event casebook.CaseEvent, body string) casebook.OutboxMail {
	t.Helper()
	m := casebook.CaseMail{Case: f.c, Ref: casebook.DefaultRefFormat.Format(f.c.Number), Event: event, Author: "Sam", Body: body,
		MessageID: casebook.NewMessageID("casebook.test")}.OutboxMail()
	if err := f.st.Enqueue(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *fixture) tempPassword(t *testing.T, name string) casebook.OutboxMail {
	t.Helper()
	m := casebook.OutboxMail{
		Kind: casebook.MailTemporaryPassword, UserID: &f.requester.ID, Recipient: f.requester.Email,
		MessageID: casebook.NewMessageID("casebook.test"),
		Data: casebook.TemporaryPasswordMail{Password: "correct-horse-battery", ExpiresAt: testExpiry,
			Name: name, Reason: casebook.ReasonReset},
	}
	if err := f.st.Enqueue(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *fixture) addFiles(t *testing.T, externalID string) casebook.Outcome {
	t.Helper()
	out, err := f.svc.AddUpdate(t.Context(), casebook.Update{
		Source: casebook.SourceEmail, ExternalID: externalID, CaseNumber: f.c.Number,
		Author: casebook.Author{Kind: casebook.IdentityEmail, Value: f.requester.Email, Name: "Alice"},
		Body:   "here are the scans",
		Files: casebook.Files(
			casebook.File{Name: "scan.pdf", Body: strings.NewReader("%PDF-1.4 patient John Doe, HbA1c 9.1")},
			casebook.File{Name: "notes.txt", Body: strings.NewReader(strings.Repeat("x", 2500))},
		),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// entry reads an outbox row back by its Message-ID.
func (f *fixture) entry(t *testing.T, messageID string) casebook.OutboxEntry {
	t.Helper()
	es, err := f.st.OutboxEntries(t.Context(), postgres.OutboxFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.MessageID == messageID {
			return e
		}
	}
	t.Fatalf("no outbox row %s", messageID)
	return casebook.OutboxEntry{}
}

func (f *fixture) rawData(t *testing.T, messageID string) string {
	t.Helper()
	var s string
	if err := f.st.DB().GetContext(t.Context(), &s, `SELECT data::text FROM outbox WHERE message_id = $1`, messageID); err != nil {
		t.Fatal(err)
	}
	return s
}

type parsed struct {
	h          gomail.Header
	text, html string
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{h: r.Header}
	if ct, _, _ := r.Header.ContentType(); ct != "multipart/alternative" {
		t.Errorf("Content-Type = %q, want multipart/alternative", ct)
	}
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(part.Body)
		if err != nil {
			t.Fatal(err)
		}
		switch ct, _, _ := part.Header.(*gomail.InlineHeader).ContentType(); ct {
		case "text/plain":
			p.text = string(b)
		case "text/html":
			p.html = string(b)
		default:
			t.Errorf("unexpected part %s", ct)
		}
	}
	if p.text == "" || p.html == "" {
		t.Errorf("want a text/plain and a text/html part")
	}
	return p
}

func TestSendsEachKind(t *testing.T) {
	f := newFixture(t)
	w := f.worker(t, nil, nil)
	ctx := t.Context()

	out := f.addFiles(t, "mail-1")
	var notifyID string
	if err := f.st.DB().GetContext(ctx, &notifyID, `SELECT message_id FROM outbox WHERE update_id = $1`, out.UpdateID); err != nil {
		t.Fatal(err)
	}
	caseMail := f.caseEmail(t, casebook.CaseOpened, "")
	pw := f.tempPassword(t, "Alice Example")
	drain(t, w)

	msgs := f.srv.Messages()
	byID := map[string]smtptest.Message{}
	for _, m := range msgs {
		p := parse(t, m.Data)
		byID[p.h.Get("Message-Id")] = m
	}
	if len(msgs) != 3 || len(byID) != 3 {
		t.Fatalf("got %d mails with %d Message-IDs, want 3", len(msgs), len(byID))
	}
	ref := casebook.DefaultRefFormat.Format(f.c.Number)
	tests := []struct {
		name      string
		messageID string
		to        string
		subject   string
		text      []string
		html      []string
		absent    []string
		check     func(t *testing.T, p parsed)
	}{
		{
			name: "owner notification", messageID: notifyID, to: "sam@support.example",
			subject: "[" + ref + "] 2 new files: Lab results",
			text:    []string{"Alice <alice@acme.example> added 2 files to " + ref, "through email", "scan.pdf (36 bytes)", "notes.txt (2.5 kB)", testBaseURL + "/cases/" + ref},
			html:    []string{"Alice &lt;alice@acme.example&gt;", "scan.pdf", `href="` + testBaseURL + "/cases/" + ref + `"`},
			absent:  []string{"John Doe", "HbA1c", "xxxxxxxx", "here are the scans"},
		},
		{
			name: "case email", messageID: caseMail.MessageID, to: "alice@acme.example",
			subject: "[" + ref + "] Lab results",
			text:    []string{"We have opened case " + ref, "reply to this mail", testBaseURL + "/cases/" + ref},
			html:    []string{"We have opened case <strong>" + ref + "</strong>"},
			check: func(t *testing.T, p parsed) {
				rt, err := p.h.AddressList("Reply-To")
				if err != nil || len(rt) != 1 {
					t.Fatalf("Reply-To = %v, %v", rt, err)
				}
				tok := casebook.TokenFromAddress(testReply, rt[0].Address)
				got, err := f.signer.Verify(tok)
				if err != nil {
					t.Fatalf("Reply-To %s: %v", rt[0].Address, err)
				}
				if diff := cmp.Diff(casebook.ReplyToken{CaseNumber: f.c.Number, UserID: f.requester.ID}, got,
					cmpopts.IgnoreFields(casebook.ReplyToken{}, "Expires")); diff != "" {
					t.Errorf("reply token (-want +got):\n%s", diff)
				}
				if d := time.Until(got.Expires) - casebook.DefaultTokenTTL; d < -time.Minute || d > time.Hour {
					t.Errorf("reply token expires %v, want %v from now", got.Expires, casebook.DefaultTokenTTL)
				}
			},
		},
		{
			name: "temporary password", messageID: pw.MessageID, to: "alice@acme.example",
			subject: "Your temporary casebook password",
			text:    []string{"Hello Alice Example", "Temporary password: correct-horse-battery", testExpiry.Format("2 January 2006 at 15:04 UTC"), "must choose a new password", testBaseURL + "/login"},
			html:    []string{"correct-horse-battery", testExpiry.Format("2 January 2006 at 15:04 UTC")},
			check: func(t *testing.T, p parsed) {
				if got := p.h.Get("To"); !strings.Contains(got, "Alice Example") {
					t.Errorf("To = %q, want the name", got)
				}
				if raw := f.rawData(t, pw.MessageID); strings.Contains(raw, "correct-horse-battery") {
					t.Errorf("password still in the database after sending: %s", raw)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := byID[tt.messageID]
			if !ok {
				t.Fatalf("no mail with Message-ID %s", tt.messageID)
			}
			if diff := cmp.Diff([]string{tt.to}, m.To); diff != "" {
				t.Errorf("RCPT TO (-want +got):\n%s", diff)
			}
			if m.From != "support@casebook.test" {
				t.Errorf("MAIL FROM = %q", m.From)
			}
			p := parse(t, m.Data)
			if got, _ := p.h.Subject(); got != tt.subject {
				t.Errorf("Subject = %q, want %q", got, tt.subject)
			}
			for k, want := range map[string]string{"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"} {
				if got := p.h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if from, _ := p.h.AddressList("From"); len(from) != 1 || from[0].Address != "support@casebook.test" || from[0].Name != "Acme Support" {
				t.Errorf("From = %v", from)
			}
			for _, s := range tt.text {
				if !strings.Contains(p.text, s) {
					t.Errorf("text part lacks %q:\n%s", s, p.text)
				}
			}
			for _, s := range tt.html {
				if !strings.Contains(p.html, s) {
					t.Errorf("html part lacks %q:\n%s", s, p.html)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(string(m.Data), s) {
					t.Errorf("mail carries %q, which it must not", s)
				}
			}
			if tt.check != nil {
				tt.check(t, p)
			}
			e := f.entry(t, tt.messageID)
			if e.Status != casebook.OutboxSent || e.SentAt == nil || e.Attempts != 1 {
				t.Errorf("row: status %s, sent_at %v, attempts %d", e.Status, e.SentAt, e.Attempts)
			}
		})
	}
}

func TestTemporaryFailuresAreRetried(t *testing.T) {
	f := newFixture(t)
	w := f.worker(t, nil, nil)
	m := f.caseEmail(t, casebook.CaseOpened, "")

	// 4xx: deferred with the reply kept, nothing delivered.
	f.srv.SetReply(func(smtptest.Message) error {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	})
	drain(t, w)
	e := f.entry(t, m.MessageID)
	if e.Status != casebook.OutboxPending || e.Attempts != 1 || e.LastError != "smtp 451 4.3.0 try again later" || !e.NextAttemptAt.After(f.clock.Now()) {
		t.Fatalf("after 451: %+v", e)
	}
	// Not due again before its backoff.
	drain(t, w)
	if e := f.entry(t, m.MessageID); e.Attempts != 1 {
		t.Fatalf("retried before its backoff: attempts %d", e.Attempts)
	}

	// Server down: deferred again, further out.
	f.srv.Stop()
	f.clock.Add(time.Minute)
	drain(t, w)
	e2 := f.entry(t, m.MessageID)
	if e2.Status != casebook.OutboxPending || e2.Attempts != 2 || !strings.HasPrefix(e2.LastError, "connect: ") {
		t.Fatalf("after connection refused: %+v", e2)
	}
	if got, min := e2.NextAttemptAt.Sub(f.clock.Now()), 48*time.Second; got < min {
		t.Errorf("second backoff %s, want at least %s (doubled, less jitter)", got, min)
	}

	// Back up (on a new address): delivered once.
	f.srv = smtptest.Start(t, smtptest.Options{})
	w.dialer.Addr = f.srv.Addr
	f.clock.Add(2 * time.Minute)
	drain(t, w)
	if got := len(f.srv.Messages()); got != 1 {
		t.Fatalf("%d mails delivered, want 1", got)
	}
	if e := f.entry(t, m.MessageID); e.Status != casebook.OutboxSent || e.Attempts != 3 {
		t.Fatalf("after recovery: %+v", e)
	}
}

func TestPermanentFailures(t *testing.T) {
	tests := []struct {
		name   string
		reply  error
		max    int
		tries  int
		reason string
	}{
		{"5xx fails at once", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}, 0, 1, "smtp 550 5.1.1 No such user"},
		{"4xx until the last try", &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}, 3, 3, "gave up after 3 attempts: smtp 452 4.2.2 Mailbox full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			w := f.worker(t, nil, func(o *Options) { o.MaxAttempts = tt.max })
			f.srv.SetReply(func(smtptest.Message) error { return tt.reply })
			pw := f.tempPassword(t, "Alice")
			for range tt.tries {
				drain(t, w)
				f.clock.Add(2 * time.Hour)
			}
			failed, err := f.st.OutboxEntries(t.Context(), postgres.OutboxFilter{Status: casebook.OutboxFailed})
			if err != nil {
				t.Fatal(err)
			}
			if len(failed) != 1 || failed[0].MessageID != pw.MessageID || failed[0].LastError != tt.reason || failed[0].Attempts != tt.tries {
				t.Fatalf("failed rows: %+v", failed)
			}
			if raw := f.rawData(t, pw.MessageID); strings.Contains(raw, "correct-horse-battery") {
				t.Errorf("password still in the database after failing: %s", raw)
			}
		})
	}
}

// crashingStore loses the first "sent" mark, as a worker killed between the server's
// 250 and the UPDATE would.
type crashingStore struct {
	*postgres.Store
	mu      sync.Mutex
	crashed bool
}

func (s *crashingStore) MarkOutboxSent(ctx context.Context, id int64, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.crashed {
		s.crashed = true
		return errors.New("connection reset by peer")
	}
	return s.Store.MarkOutboxSent(ctx, id, now)
}

func TestCrashBetweenSendAndMark(t *testing.T) {
	f := newFixture(t)
	w := f.worker(t, &crashingStore{Store: f.st}, nil)
	m := f.caseEmail(t, casebook.CaseOpened, "")

	drain(t, w)
	if e := f.entry(t, m.MessageID); e.Status != casebook.OutboxPending {
		t.Fatalf("row %s after the lost mark", e.Status)
	}
	// Within the lease nobody sends it again.
	f.clock.Add(DefaultLease / 2)
	drain(t, w)
	if got := len(f.srv.Messages()); got != 1 {
		t.Fatalf("%d mails within the lease, want 1", got)
	}
	f.clock.Add(DefaultLease)
	drain(t, w)
	f.clock.Add(time.Hour)
	drain(t, w)

	msgs := f.srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d mails, want the mail and one duplicate", len(msgs))
	}
	var ids []string
	for _, m := range msgs {
		p := parse(t, m.Data)
		ids = append(ids, p.h.Get("Message-Id"))
	}
	if diff := cmp.Diff([]string{m.MessageID, m.MessageID}, ids); diff != "" {
		t.Errorf("Message-IDs (-want +got):\n%s", diff)
	}
	if e := f.entry(t, m.MessageID); e.Status != casebook.OutboxSent {
		t.Errorf("row %s, want sent", e.Status)
	}
}

func TestTwoWorkersSendEachRowOnce(t *testing.T) {
	f := newFixture(t)
	const n = 120
	want := map[string]bool{}
	for range n {
		m := f.tempPassword(t, "Alice")
		want[m.MessageID] = true
	}
	var wg sync.WaitGroup
	for range 2 {
		w := f.worker(t, nil, func(o *Options) { o.Batch = 7 })
		wg.Go(func() {
			for {
				k, err := w.sendDue(t.Context())
				if err != nil {
					t.Error(err)
					return
				}
				if k == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	got := map[string]int{}
	for _, m := range f.srv.Messages() {
		p := parse(t, m.Data)
		got[p.h.Get("Message-Id")]++
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("%s sent %d times", id, got[id])
		}
	}
	if len(got) != n {
		t.Errorf("%d distinct mails, want %d", len(got), n)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t)
	w := f.worker(t, nil, func(o *Options) { o.PerHour = 3; o.Batch = 2 })
	var toRequester []casebook.OutboxMail
	for i := range 5 {
		toRequester = append(toRequester, f.caseEmail(t, casebook.CaseReply, fmt.Sprintf("reply %d", i)))
	}
	out := f.addFiles(t, "mail-1") // to the owner: another recipient, its own budget
	drain(t, w)

	status := func(m casebook.OutboxMail) casebook.OutboxStatus { return f.entry(t, m.MessageID).Status }
	var got []casebook.OutboxStatus
	for _, m := range toRequester {
		got = append(got, status(m))
	}
	want := []casebook.OutboxStatus{casebook.OutboxSent, casebook.OutboxSent, casebook.OutboxSent, casebook.OutboxSuppressed, casebook.OutboxSuppressed}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if e := f.entry(t, toRequester[4].MessageID); e.LastError != "rate limit: 3 mails per case and recipient per hour" {
		t.Errorf("reason %q", e.LastError)
	}
	var ownerStatus casebook.OutboxStatus
	if err := f.st.DB().GetContext(t.Context(), &ownerStatus, `SELECT status FROM outbox WHERE update_id = $1`, out.UpdateID); err != nil {
		t.Fatal(err)
	}
	if ownerStatus != casebook.OutboxSent {
		t.Errorf("owner notification %s, want sent", ownerStatus)
	}

	// An hour later the budget is back.
	f.clock.Add(61 * time.Minute)
	later := f.caseEmail(t, casebook.CaseReply, "later")
	drain(t, w)
	if s := status(later); s != casebook.OutboxSent {
		t.Errorf("an hour later: %s, want sent", s)
	}
	if got := len(f.srv.Messages()); got != 5 {
		t.Errorf("%d mails sent, want 5", got)
	}
}

func TestHeaderInjection(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	evil := "Lab results\r\nBcc: mallory@evil.example\r\n\r\nInjected body"
	c, err := f.st.OpenCase(ctx, postgres.NewCase{OrgID: f.c.OrgID, RequesterID: f.requester.ID, OwnerID: f.owner.ID, Subject: evil})
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	m1 := f.caseEmail(t, casebook.CaseReply, "body\r\nBcc: mallory@evil.example")
	m2 := f.tempPassword(t, "Alice\r\nX-Injected: yes\nBcc: mallory@evil.example")
	// An author name and a file name as a hostile chat user could set them.
	out, err := f.svc.AddUpdate(ctx, casebook.Update{
		Source: casebook.SourceEmail, ExternalID: "evil", CaseNumber: c.Number,
		Author: casebook.Author{Kind: casebook.IdentityEmail, Value: f.requester.Email, Name: "Eve\r\nBcc: mallory@evil.example"},
		Files:  casebook.Files(casebook.File{Name: "a\r\nBcc: mallory@evil.example.pdf", Body: strings.NewReader("x")}),
	})
	if err != nil {
		t.Fatal(err)
	}
	badRcpt := casebook.OutboxMail{Kind: casebook.MailTemporaryPassword, Recipient: "alice@acme.example\r\nRCPT TO:<mallory@evil.example>",
		MessageID: casebook.NewMessageID("casebook.test"), Data: casebook.TemporaryPasswordMail{Password: "p", ExpiresAt: testExpiry}}
	if err := f.st.Enqueue(ctx, badRcpt); err != nil {
		t.Fatal(err)
	}
	drain(t, f.worker(t, nil, nil))

	msgs := f.srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d mails sent, want 3", len(msgs))
	}
	for _, m := range msgs {
		if len(m.To) != 1 || strings.Contains(m.To[0], "evil") {
			t.Errorf("RCPT TO %v", m.To)
		}
		p := parse(t, m.Data)
		fields := p.h.Fields()
		for fields.Next() {
			switch strings.ToLower(fields.Key()) {
			case "bcc", "x-injected":
				t.Errorf("injected header %s: %s", fields.Key(), fields.Value())
			}
			if strings.ContainsAny(fields.Value(), "\r\n") {
				t.Errorf("%s carries a line break: %q", fields.Key(), fields.Value())
			}
		}
		if s, _ := p.h.Subject(); strings.Contains(s, "Bcc") && !strings.HasPrefix(s, "[") {
			t.Errorf("Subject %q", s)
		}
	}
	var notifyID string
	if err := f.st.DB().GetContext(ctx, &notifyID, `SELECT message_id FROM outbox WHERE update_id = $1`, out.UpdateID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{m1.MessageID, m2.MessageID, notifyID} {
		if e := f.entry(t, id); e.Status != casebook.OutboxSent {
			t.Errorf("%s: %s %s", id, e.Status, e.LastError)
		}
	}
	if e := f.entry(t, badRcpt.MessageID); e.Status != casebook.OutboxFailed || !strings.Contains(e.LastError, "not a bare address") {
		t.Errorf("bad recipient: %s %q", e.Status, e.LastError)
	}
}

func TestHeaderText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Lab results", "Lab results"},
		{"a\r\nBcc: x@y", "a Bcc: x@y"},
		{"a\nb\rc\td\x00e\x1bf", "a b c d e f"},
		{"  padded   out  ", "padded out"},
		{"line\u2028sep\u2029para\u0085nel", "line sep para nel"},
		{"Grüße, 日本", "Grüße, 日本"},
		{"bad\xffutf8", "bad utf8"},
		{strings.Repeat("a", 300), strings.Repeat("a", 200) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 20)], func(t *testing.T) {
			if got := headerText(tt.in); got != tt.want {
				t.Errorf("headerText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzHeaderText(f *testing.F) {
	for _, s := range []string{"Lab results", "a\r\nBcc: x", "\u2028", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := headerText(s)
		if strings.ContainsAny(got, "\r\n\x00") {
			t.Fatalf("headerText(%q) = %q keeps a control character", s, got)
		}
		var h gomail.Header
		h.SetSubject(got)
		h.SetAddressList("To", []*gomail.Address{{Name: got, Address: "a@example.com"}})
		var buf bytes.Buffer
		w, err := gomail.CreateSingleInlineWriter(&buf, h)
		if err != nil {
			t.Fatalf("header of %q cannot be written: %v", s, err)
		}
		w.Close()
		r, err := gomail.CreateReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(r.Header.Map()); n != 4 { // Subject, To, Content-Transfer-Encoding, Mime-Version
			t.Fatalf("%q gave %d header fields: %v", s, n, r.Header.Map())
		}
	})
}

// TestSessionRefusalsAreRetried: a 5xx about our session (a refused login, a sender
// the server will not take) is a configuration problem, not the mail's: the mail waits
// for it to be fixed instead of failing.
func TestSessionRefusalsAreRetried(t *testing.T) {
	serverTLS, clientTLS := smtptest.Certificate(t)
	tests := []struct {
		name   string
		url    string
		reason string
	}{
		{"no login where one is required", "smtp://%s", "MAIL FROM: smtp 502 5.7.0 Please authenticate first"},
		{"wrong password", "smtp://casebook:wrong@%s", "connect: smtp 535 5.7.8 Authentication failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv = smtptest.Start(t, smtptest.Options{TLS: serverTLS, Users: map[string]string{"casebook": "s3cret"}})
			w := f.worker(t, nil, nil)
			d, err := ParseURL(strings.Replace(tt.url, "%s", f.srv.Addr, 1))
			if err != nil {
				t.Fatal(err)
			}
			d.TLSConfig, d.LocalName = clientTLS, "casebook.test"
			w.dialer = d
			m := f.caseEmail(t, casebook.CaseOpened, "")
			drain(t, w)
			e := f.entry(t, m.MessageID)
			if e.Status != casebook.OutboxPending || !strings.HasPrefix(e.LastError, tt.reason) {
				t.Errorf("row %s %q, want pending with %q", e.Status, e.LastError, tt.reason)
			}
		})
	}
}
