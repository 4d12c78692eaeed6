package doctor_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/casebookhq/casebook/casebook/doctor"
	"github.com/casebookhq/casebook/casebook/outbox"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
	imapmailbox "github.com/casebookhq/casebook/ingest/imap"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// expect runs one check and compares its status and a fragment of its detail.
func expect(t *testing.T, c doctor.Check, status doctor.Status, fragment string) {
	t.Helper()
	r := doctor.Run(context.Background(), []doctor.Check{c}, 10*time.Second)[0]
	if r.Status != status || !strings.Contains(r.Detail, fragment) {
		t.Errorf("%s: got %s %q, want %s containing %q", r.Name, r.Status, r.Detail, status, fragment)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// testCert borrows httptest's certificate for 127.0.0.1 and returns a server config
// and a client config that trusts it.
func testCert(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return &tls.Config{Certificates: srv.TLS.Certificates}, &tls.Config{RootCAs: pool}
}

func opener(url string) func(ctx context.Context) (doctor.Database, func(), error) {
	return func(ctx context.Context) (doctor.Database, func(), error) {
		st, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, nil, err
		}
		return st, func() { st.Close() }, nil
	}
}

func TestPostgres(t *testing.T) {
	url := pgtest.URL(t)
	t.Run("working", func(t *testing.T) {
		expect(t, doctor.Postgres(opener(url), "test"), doctor.OK, "schema up to date")
	})
	t.Run("closed port", func(t *testing.T) {
		dead := "postgres://postgres@" + closedAddr(t) + "/casebook?sslmode=disable&connect_timeout=2"
		expect(t, doctor.Postgres(opener(dead), "dead"), doctor.Fail, "is it running?")
	})
	t.Run("not migrated", func(t *testing.T) {
		st := pgtest.Store(t)
		if _, err := st.DB().Exec(`DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`); err != nil {
			t.Fatal(err)
		}
		open := func(context.Context) (doctor.Database, func(), error) { return st, func() {}, nil }
		expect(t, doctor.Postgres(open, "test"), doctor.Fail, "run `casebook migrate`")
	})
}

// skewed is a database whose clock is off by d.
type skewed struct {
	doctor.Database
	d time.Duration
}

func (s skewed) Now(ctx context.Context) (time.Time, error) {
	t, err := s.Database.Now(ctx)
	return t.Add(s.d), err
}

func TestClock(t *testing.T) {
	st := pgtest.Store(t)
	tests := []struct {
		name   string
		skew   time.Duration
		status doctor.Status
		detail string
	}{
		{"in step", 0, doctor.OK, "the database's"},
		{"database ahead", 10 * time.Second, doctor.Warn, "behind the database's"},
		{"database far behind", -10 * time.Minute, doctor.Fail, "ahead of the database's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open := func(context.Context) (doctor.Database, func(), error) { return skewed{st, tt.skew}, func() {}, nil }
			expect(t, doctor.Clock(open, time.Now, 2*time.Second, time.Minute), tt.status, tt.detail)
		})
	}
	t.Run("database down", func(t *testing.T) {
		dead := "postgres://postgres@" + closedAddr(t) + "/x?sslmode=disable&connect_timeout=2"
		expect(t, doctor.Clock(opener(dead), time.Now, time.Second, time.Minute), doctor.Fail, "cannot compare clocks")
	})
}

func TestBlobDir(t *testing.T) {
	dir := t.TempDir()
	t.Run("writable", func(t *testing.T) {
		expect(t, doctor.BlobDir(filepath.Join(dir, "blobs"), 1, 2), doctor.OK, "is writable")
	})
	t.Run("not a directory", func(t *testing.T) {
		file := filepath.Join(dir, "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		expect(t, doctor.BlobDir(filepath.Join(file, "blobs"), 1, 2), doctor.Fail, "cannot create")
	})
	t.Run("disk full", func(t *testing.T) {
		expect(t, doctor.BlobDir(dir, 1<<62, 1<<62), doctor.Fail, "free space or move --data-dir")
	})
	t.Run("disk nearly full", func(t *testing.T) {
		expect(t, doctor.BlobDir(dir, 1, 1<<62), doctor.Warn, "will soon be refused")
	})
	entries, _ := os.ReadDir(filepath.Join(dir, "blobs", "tmp"))
	if len(entries) != 0 {
		t.Errorf("the check left %d file(s) behind", len(entries))
	}
}

// imapServer runs go-imap's in-memory server with one user who has INBOX and
// Processed, offering STARTTLS when tlsCfg is set.
func imapServer(t *testing.T, tlsCfg *tls.Config, caps imap.CapSet) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("support@acme.test", "s3cret")
	for _, name := range []string{"INBOX", "Processed"} {
		if err := u.Create(name, nil); err != nil {
			t.Fatal(err)
		}
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         caps,
		TLSConfig:    tlsCfg,
		InsecureAuth: tlsCfg == nil,
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// oldIMAPServer speaks just enough IMAP4rev1 without IDLE for a login and a LIST, as
// old servers do; go-imap's own server always offers IDLE.
func oldIMAPServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				io.WriteString(conn, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] old server ready\r\n")
				sc := bufio.NewScanner(conn)
				for sc.Scan() {
					tag, cmd, _ := strings.Cut(sc.Text(), " ")
					verb, _, _ := strings.Cut(cmd, " ")
					switch strings.ToUpper(verb) {
					case "CAPABILITY":
						io.WriteString(conn, "* CAPABILITY IMAP4rev1\r\n"+tag+" OK done\r\n")
					case "LOGIN":
						io.WriteString(conn, tag+" OK [CAPABILITY IMAP4rev1] logged in\r\n")
					case "LIST":
						io.WriteString(conn, "* LIST () \"/\" INBOX\r\n* LIST () \"/\" Processed\r\n"+tag+" OK done\r\n")
					case "LOGOUT":
						io.WriteString(conn, "* BYE\r\n"+tag+" OK bye\r\n")
						return
					default:
						io.WriteString(conn, tag+" BAD unknown\r\n")
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

func TestIMAP(t *testing.T) {
	srvTLS, cliTLS := testCert(t)
	rev1 := imap.CapSet{imap.CapIMAP4rev1: {}}
	plain := imapServer(t, nil, rev1)
	starttls := imapServer(t, srvTLS, rev1)
	noIdle := oldIMAPServer(t)
	// The mailbox connects with the poller's own code: the doctor checks what it would do.
	box := func(addr, scheme, query string) doctor.Mailbox {
		m, err := imapmailbox.ParseURL(scheme + "://support%40acme.test:s3cret@" + addr + "/INBOX" + query)
		if err != nil {
			t.Fatal(err)
		}
		return doctor.Mailbox{Name: "support INBOX", Folder: "INBOX", Folders: []string{"Processed"},
			Connect: func(ctx context.Context) (*imapclient.Client, error) { return m.Connect(ctx, cliTLS) }}
	}
	wrongPassword := func(addr string) doctor.Mailbox {
		m, err := imapmailbox.ParseURL("imap://support%40acme.test:nope@" + addr + "/INBOX?tls=none")
		if err != nil {
			t.Fatal(err)
		}
		return doctor.Mailbox{Name: "support INBOX", Folder: "INBOX",
			Connect: func(ctx context.Context) (*imapclient.Client, error) { return m.Connect(ctx, nil) }}
	}
	tests := []struct {
		name   string
		m      doctor.Mailbox
		status doctor.Status
		detail string
	}{
		{"working", box(plain, "imap", "?tls=none"), doctor.OK, "folders present, IDLE supported"},
		{"working with STARTTLS", box(starttls, "imap", ""), doctor.OK, "folders present, IDLE supported"},
		{"wrong password", wrongPassword(plain), doctor.Fail, "refused the login"},
		{"missing folder", func() doctor.Mailbox {
			m := box(plain, "imap", "?tls=none")
			m.Folders = []string{"Processed", "Quarantine"}
			return m
		}(), doctor.Fail, "Quarantine do not exist"},
		{"no STARTTLS offered", box(plain, "imap", ""), doctor.Fail, "STARTTLS with"},
		{"TLS on a plain port", box(plain, "imaps", ""), doctor.Fail, "TLS with"},
		{"closed port", box(closedAddr(t), "imap", "?tls=none"), doctor.Fail, "cannot connect"},
		{"no IDLE", box(noIdle, "imap", "?tls=none"), doctor.Warn, "lacks IDLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expect(t, doctor.IMAP(tt.m), tt.status, tt.detail) })
	}
}

// smtpServer runs go-smtp requiring AUTH PLAIN as user/pass; with tlsCfg it offers
// STARTTLS, or speaks TLS from the first byte when implicit.
func smtpServer(t *testing.T, tlsCfg *tls.Config, implicit bool) string {
	t.Helper()
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{}, nil }))
	s.Domain = "smtp.test"
	s.AllowInsecureAuth = tlsCfg == nil
	s.TLSConfig = tlsCfg
	var ln net.Listener
	var err error
	if implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tlsCfg)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

type smtpSession struct{}

func (*smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (*smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user == "casebook@support.test" && pass == "s3cret" {
			return nil
		}
		return errors.New("invalid credentials")
	}), nil
}
func (*smtpSession) Mail(string, *smtp.MailOptions) error {
	return errors.New("the doctor must not send mail")
}
func (*smtpSession) Rcpt(string, *smtp.RcptOptions) error { return errors.New("no") }
func (*smtpSession) Data(io.Reader) error                 { return errors.New("no") }
func (*smtpSession) Reset()                               {}
func (*smtpSession) Logout() error                        { return nil }

func TestSMTP(t *testing.T) {
	srvTLS, cliTLS := testCert(t)
	plain := smtpServer(t, nil, false)
	starttls := smtpServer(t, srvTLS, false)
	implicit := smtpServer(t, srvTLS, true)
	// The probe is the outbox worker's own dialer: the doctor checks what it would do.
	server := func(addr string, sec outbox.Security, pass string) doctor.SMTPProbe {
		return &outbox.Dialer{Addr: addr, Security: sec, Username: "casebook@support.test", Password: pass, TLSConfig: cliTLS}
	}
	tests := []struct {
		name   string
		s      doctor.SMTPProbe
		status doctor.Status
		detail string
	}{
		{"working", server(plain, outbox.NoTLS, "s3cret"), doctor.OK, "no mail sent"},
		{"working with STARTTLS", server(starttls, outbox.StartTLS, "s3cret"), doctor.OK, "reached casebook@support.test@starttls 127.0.0.1"},
		{"working with TLS", server(implicit, outbox.ImplicitTLS, "s3cret"), doctor.OK, "reached casebook@support.test@tls 127.0.0.1"},
		{"wrong password", server(starttls, outbox.StartTLS, "nope"), doctor.Fail, "refused the login"},
		{"STARTTLS not offered", server(plain, outbox.StartTLS, "s3cret"), doctor.Fail, "STARTTLS with the server failed"},
		{"closed port", server(closedAddr(t), outbox.StartTLS, "s3cret"), doctor.Fail, "cannot connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expect(t, doctor.SMTP(tt.s), tt.status, tt.detail) })
	}
}

// fakeSlack answers auth.test and apps.connections.open for the tokens it knows.
func fakeSlack(t *testing.T, scopes string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/auth.test", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer xoxb-good" {
			io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
			return
		}
		w.Header().Set("X-OAuth-Scopes", scopes)
		io.WriteString(w, `{"ok":true,"team":"Acme Support","user":"casebook"}`)
	})
	mux.HandleFunc("POST /api/apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer xapp-good" {
			io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
			return
		}
		io.WriteString(w, `{"ok":true,"url":"wss://example.invalid/link"}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/api/"
}

func TestSlack(t *testing.T) {
	need := []string{"channels:history", "files:read", "chat:write"}
	full := fakeSlack(t, "channels:history,files:read, chat:write,commands")
	partial := fakeSlack(t, "channels:history,chat:write")
	tests := []struct {
		name   string
		s      doctor.Slack
		status doctor.Status
		detail string
	}{
		{"working", doctor.Slack{BotToken: "xoxb-good", AppToken: "xapp-good", APIURL: full}, doctor.OK, "Socket Mode token valid"},
		{"events over HTTP", doctor.Slack{BotToken: "xoxb-good", APIURL: full}, doctor.OK, "no Socket Mode token"},
		{"bad bot token", doctor.Slack{BotToken: "xoxb-bad", APIURL: full}, doctor.Fail, "invalid_auth"},
		{"missing scope", doctor.Slack{BotToken: "xoxb-good", APIURL: partial}, doctor.Fail, "lacks scope(s) files:read"},
		{"bad app token", doctor.Slack{BotToken: "xoxb-good", AppToken: "xapp-bad", APIURL: full}, doctor.Fail, "Socket Mode token was refused (invalid_auth)"},
		{"unreachable", doctor.Slack{BotToken: "xoxb-good", APIURL: "http://" + closedAddr(t) + "/api/"}, doctor.Fail, "cannot reach Slack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.Scopes, tt.s.AppScope = need, "connections:write"
			expect(t, doctor.SlackCheck(tt.s), tt.status, tt.detail)
		})
	}
}

// fakeDiscord answers /users/@me and /applications/@me for the token "good".
func fakeDiscord(t *testing.T, flags int) string {
	t.Helper()
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bot good" {
				http.Error(w, `{"message":"401: Unauthorized","code":0}`, http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /api/v9/users/@me", auth(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"1","username":"casebook","bot":true}`)
	}))
	mux.HandleFunc("GET /api/v9/applications/@me", auth(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"1","name":"Casebook","flags":`+strconv.Itoa(flags)+`}`)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/api/v9"
}

func TestDiscord(t *testing.T) {
	on := fakeDiscord(t, 1<<19)
	off := fakeDiscord(t, 1<<23)
	tests := []struct {
		name   string
		d      doctor.Discord
		status doctor.Status
		detail string
	}{
		{"working", doctor.Discord{Token: "good", APIURL: on}, doctor.OK, "Message Content intent enabled"},
		{"bad token", doctor.Discord{Token: "bad", APIURL: on}, doctor.Fail, "refused the bot token (401)"},
		{"intent off", doctor.Discord{Token: "good", APIURL: off}, doctor.Fail, "Message Content intent is off"},
		{"unreachable", doctor.Discord{Token: "good", APIURL: "http://" + closedAddr(t) + "/api/v9"}, doctor.Fail, "cannot reach Discord"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expect(t, doctor.DiscordCheck(tt.d), tt.status, tt.detail) })
	}
}

func TestRunTimeoutAndPrint(t *testing.T) {
	hang := doctor.Check{Name: "hangs", Run: func(ctx context.Context) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	}}
	fine := doctor.Check{Name: "fine", Run: func(context.Context) (string, error) { return "works", nil }}
	rs := doctor.Run(context.Background(), []doctor.Check{fine, hang}, 50*time.Millisecond)
	if !doctor.Failed(rs) || rs[1].Status != doctor.Fail || !strings.Contains(rs[1].Detail, "no answer within") {
		t.Errorf("results: %+v", rs)
	}
	var b bytes.Buffer
	if err := doctor.Print(&b, rs); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "ok    fine   works\nFAIL  hangs  no answer within 50ms") {
		t.Errorf("report:\n%s", b.String())
	}
}
