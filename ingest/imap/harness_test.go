package imap_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
	"github.com/casebookhq/casebook/ingest"
	cbimap "github.com/casebookhq/casebook/ingest/imap"
	"github.com/casebookhq/casebook/ingest/imap/dovecottest"
	"github.com/casebookhq/casebook/ingest/senderauth"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is a database with one org (acme.example), a contact, an owner and one open
// case, and the real mail processor over it.
type env struct {
	st   *postgres.Store
	proc *ingest.MailProcessor
	c    casebook.Case
	ref  string
	// others are more open cases of the same org, for the benchmarks' spread.
	others []string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := t.Context()
	e := &env{st: pgtest.Store(t)}
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	org, err := e.st.AddOrg(ctx, "Acme Health", "acme.example")
	if err != nil {
		t.Fatal(err)
	}
	contact, err := e.st.AddUser(ctx, postgres.NewUser{OrgID: &org.ID, Email: "alice@acme.example", Name: "Alice"})
	if err != nil {
		t.Fatal(err)
	}
	owner, err := e.st.AddUser(ctx, postgres.NewUser{Staff: true, Email: "sam@support.example", Name: "Sam"})
	if err != nil {
		t.Fatal(err)
	}
	e.c, err = e.st.OpenCase(ctx, postgres.NewCase{OrgID: org.ID, RequesterID: contact.ID, OwnerID: owner.ID, Subject: "Lab results"})
	if err != nil {
		t.Fatal(err)
	}
	e.ref = casebook.DefaultRefFormat.Format(e.c.Number)
	for range benchCases - 1 {
		c, err := e.st.OpenCase(ctx, postgres.NewCase{OrgID: org.ID, RequesterID: contact.ID, OwnerID: owner.ID, Subject: "More results"})
		if err != nil {
			t.Fatal(err)
		}
		e.others = append(e.others, casebook.DefaultRefFormat.Format(c.Number))
	}
	svc := casebook.NewService(e.st, blobs, casebook.Options{})
	e.proc = ingest.NewProcessor(svc, e.st, blobs, ingest.ProcessorOptions{ReplyAddress: "support@support.example",
		Verifier: senderauth.New(senderauth.Options{TrustedIDs: []string{trustedID}})})
	return e
}

// updates counts the updates and attachments on the case.
func (e *env) updates(t testing.TB) (updates, files int) {
	t.Helper()
	db := e.st.DB()
	if err := db.Get(&updates, `SELECT count(*) FROM updates WHERE case_id = $1`, e.c.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&files, `SELECT count(*) FROM attachments a JOIN updates u ON u.id = a.update_id WHERE u.case_id = $1`, e.c.ID); err != nil {
		t.Fatal(err)
	}
	return updates, files
}

// quarantined counts the quarantine records of a kind.
func (e *env) quarantined(t testing.TB, kind string) int {
	t.Helper()
	var n int
	if err := e.st.DB().Get(&n, `SELECT count(*) FROM quarantine WHERE kind = $1`, kind); err != nil {
		t.Fatal(err)
	}
	return n
}

// reply is a customer's reply to the case, unique by id, with an attachment of size
// bytes when size > 0.
func (e *env) reply(id string, size int) []byte {
	return mailFrom("Alice <alice@acme.example>", "Re: ["+e.ref+"] results", id, size)
}

// replyTo is reply to the i-th case, round robin over the env's cases.
func (e *env) replyTo(i int, id string, size int) []byte {
	refs := append([]string{e.ref}, e.others...)
	return mailFrom("Alice <alice@acme.example>", "Re: ["+refs[i%len(refs)]+"] results", id, size)
}

// trustedID is the receiving server whose verdict the env's processor believes;
// mailFrom writes its field, as the server that delivered the mail would.
const trustedID = "mx.support.example"

func mailFrom(from, subject, id string, size int) []byte {
	var b bytes.Buffer
	domain := strings.TrimSuffix(from[strings.LastIndexByte(from, '@')+1:], ">")
	fmt.Fprintf(&b, "Authentication-Results: %s; dmarc=pass header.from=%s\r\n", trustedID, domain)
	fmt.Fprintf(&b, "From: %s\r\nTo: support@support.example\r\nSubject: %s\r\nMessage-ID: <%s@acme.example>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n", from, subject, id)
	if size <= 0 {
		fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\n\r\nHere it is (%s).\r\n", id)
		return b.Bytes()
	}
	b.WriteString("Content-Type: multipart/mixed; boundary=BOUNDARY\r\n\r\n--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&b, "The scan is attached (%s).\r\n--BOUNDARY\r\n", id)
	b.WriteString("Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	data := make([]byte, size)
	rand.Read(data)
	copy(data, "%PDF-1.4\n")
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--BOUNDARY--\r\n")
	return b.Bytes()
}

// autoReply is an out-of-office answer: ignored.
func autoReply(ref string) []byte {
	return []byte("From: alice@acme.example\r\nTo: support@support.example\r\nSubject: Auto: Re: [" + ref + "] results\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <ooo@acme.example>\r\n\r\nI am away.\r\n")
}

// server is an IMAP server the tests run the poller against.
type server interface {
	url(mailbox string) string
	append(t testing.TB, mailbox string, raw []byte)
	count(t testing.TB, mailbox string) uint32
}

// memServer is go-imap's in-memory server on a loopback port.
type memServer struct {
	addr string
}

func startMem(t testing.TB, caps imap.CapSet) *memServer {
	t.Helper()
	mem := aliceMem(t)
	return &memServer{addr: serveMem(t, caps, func() imapserver.Session { return mem.NewSession() })}
}

// aliceMem is an in-memory store with the user alice (password pw) and her INBOX.
func aliceMem(t testing.TB) *imapmemserver.Server {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("alice", "pw")
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	return mem
}

// serveMem serves sessions from newSession on a loopback port until t ends.
func serveMem(t testing.TB, caps imap.CapSet, newSession func() imapserver.Session) string {
	t.Helper()
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return newSession(), nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

func (m *memServer) url(mailbox string) string {
	return "imap://alice:pw@" + m.addr + "/" + mailbox + "?tls=none"
}

func (m *memServer) dial(t testing.TB) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(m.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("alice", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// appendOAuth appends to a server that only speaks XOAUTH2.
func (m *memServer) appendOAuth(t testing.TB, raw []byte) {
	t.Helper()
	c, err := imapclient.DialInsecure(m.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(sasl.NewPlainClient("", "alice", "pw")); err == nil {
		t.Fatal("PLAIN accepted by an XOAUTH2-only server")
	}
	c.Close()
	c, err = imapclient.DialInsecure(m.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(&tokenClient{token: "ya29.good"}); err != nil {
		t.Fatal(err)
	}
	dovecottest.Append(t, c, "INBOX", raw)
}

type tokenClient struct{ token string }

func (c *tokenClient) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=alice\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

func (c *tokenClient) Next([]byte) ([]byte, error) { return []byte{}, nil }

func (m *memServer) append(t testing.TB, mailbox string, raw []byte) {
	t.Helper()
	c := m.dial(t)
	defer c.Close()
	dovecottest.Append(t, c, mailbox, raw)
}

func (m *memServer) count(t testing.TB, mailbox string) uint32 {
	t.Helper()
	c := m.dial(t)
	defer c.Close()
	data, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		// The poller has not created the folder yet.
		return 0
	}
	return *data.NumMessages
}

// dovecot is a private Dovecot with user alice.
type dovecot struct{ *dovecottest.Server }

func startDovecot(t testing.TB) *dovecot {
	return startDovecotWith(t, dovecottest.Options{})
}

func startDovecotWith(t testing.TB, opts dovecottest.Options) *dovecot {
	s := dovecottest.StartWith(t, opts)
	s.AddUser("alice", "pw")
	return &dovecot{s}
}

func (d *dovecot) url(mailbox string) string { return d.URL("alice", mailbox) }

func (d *dovecot) append(t testing.TB, mailbox string, raw []byte) {
	d.Append("alice", mailbox, raw)
}

func (d *dovecot) count(t testing.TB, mailbox string) uint32 {
	c := d.Dial("alice")
	defer c.Close()
	data, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		return 0
	}
	return *data.NumMessages
}

// poller runs a poller on url with intervals fit for tests until the test ends or
// stop is called; stop waits for Run to return and fails the test on its error.
func (e *env) poller(t testing.TB, url string, proc ingest.Processor) (stop func()) {
	t.Helper()
	_, stop = e.startPoller(t, url, proc)
	return stop
}

// startPoller is poller that also returns the Poller.
func (e *env) startPoller(t testing.TB, url string, proc ingest.Processor) (_ *cbimap.Poller, stop func()) {
	t.Helper()
	mb, err := cbimap.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return e.startMailbox(t, mb, proc)
}

// startMailbox is startPoller for a parsed mailbox, e.g. one given a token source.
func (e *env) startMailbox(t testing.TB, mb cbimap.Mailbox, proc ingest.Processor) (_ *cbimap.Poller, stop func()) {
	t.Helper()
	return e.startLocked(t, mb, proc, e.st)
}

// startLocked is startMailbox with the mailbox lock taken through locker.
func (e *env) startLocked(t testing.TB, mb cbimap.Mailbox, proc ingest.Processor, locker cbimap.Locker) (_ *cbimap.Poller, stop func()) {
	t.Helper()
	if proc == nil {
		proc = e.proc
	}
	p, err := cbimap.New(cbimap.Config{
		Mailbox:        mb,
		Processor:      proc,
		Store:          e.st,
		Locker:         locker,
		Logger:         testLogger(t),
		SpoolDir:       t.TempDir(),
		PollInterval:   100 * time.Millisecond,
		LockInterval:   100 * time.Millisecond,
		MinBackoff:     50 * time.Millisecond,
		MaxBackoff:     500 * time.Millisecond,
		ResyncInterval: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return p, stop
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// eventually waits for cond, failing the test with what it last saw after a minute:
// the bound is a deadlock guard, not a speed check.
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s", what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// folders waits for the mailbox counts to be as given.
func waitFolders(t testing.TB, s server, want map[string]uint32) {
	t.Helper()
	eventually(t, "folders", func() (bool, string) {
		var got []string
		ok := true
		for name, n := range want {
			c := s.count(t, name)
			got = append(got, fmt.Sprintf("%s=%d", name, c))
			ok = ok && c == n
		}
		return ok, strings.Join(got, " ")
	})
}

// flaky fails every message with a marker header, counting its attempts, and hands
// everything else to the real processor.
type flaky struct {
	*ingest.MailProcessor
	attempts atomic.Int64
}

func (f *flaky) Process(ctx context.Context, loc ingest.Location, raw io.ReadSeeker) (ingest.Result, error) {
	b, err := io.ReadAll(raw)
	if err != nil {
		return ingest.Result{}, err
	}
	if bytes.HasPrefix(b, []byte("X-Poison: yes\r\n")) {
		f.attempts.Add(1)
		panic("parser bug")
	}
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return ingest.Result{}, err
	}
	return f.MailProcessor.Process(ctx, loc, raw)
}

// counting counts the messages a processor handled.
type counting struct {
	ingest.Processor
	n atomic.Int64
}

func (c *counting) Process(ctx context.Context, loc ingest.Location, raw io.ReadSeeker) (ingest.Result, error) {
	res, err := c.Processor.Process(ctx, loc, raw)
	if err == nil {
		c.n.Add(1)
	}
	return res, err
}

func folderExists(t testing.TB, d *dovecot, name string) bool {
	c := d.Dial("alice")
	defer c.Close()
	_, err := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait()
	return err == nil
}

func dovecottestProxy(t testing.TB, d *dovecot) *dovecottest.Proxy {
	return dovecottest.NewProxy(t, d.Addr())
}

func mustMailbox(t testing.TB, url string) string {
	mb, err := cbimap.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return mb.String()
}
