// Package smtptest runs an in-process SMTP server (emersion/go-smtp) for tests: it
// records every mail it accepts, can answer with any reply on demand, speaks STARTTLS
// or implicit TLS with a throw-away certificate, and can require AUTH PLAIN or LOGIN.
// Deliver hands each accepted mail on, e.g. into a real mailbox by IMAP APPEND.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one accepted mail.
type Message struct {
	From string
	To   []string
	Data []byte
}

// Options configures a Server.
type Options struct {
	// TLS, when set, is offered through STARTTLS, or from the first byte with ImplicitTLS.
	TLS         *tls.Config
	ImplicitTLS bool
	// Users, when set, makes AUTH mandatory with these user names and passwords.
	Users map[string]string
	// Mechanisms limits the AUTH mechanisms offered (PLAIN, LOGIN); both by default.
	Mechanisms []string
	// XOAUTH2, when set, offers AUTH XOAUTH2 (alone, as Microsoft 365 and Gmail do
	// for OAuth clients) and makes AUTH mandatory: it reports whether a user's bearer
	// token is good. A refused token gets the JSON challenge and then 535, as those
	// servers answer.
	XOAUTH2 func(user, token string) bool
	// Deliver, when set, is called for each mail before it is accepted; an error is
	// the server's reply (an *smtp.SMTPError, or a 451).
	Deliver func(Message) error
}

// Server is a running test server.
type Server struct {
	// Addr is the host:port it listens on.
	Addr string

	opt  Options
	srv  *smtp.Server
	mu   sync.Mutex
	msgs []Message
	// reply decides the answer at the end of DATA; nil accepts.
	reply func(Message) error
	// arrived is signalled (without blocking) after each accepted mail.
	arrived chan struct{}
}

// Start runs a server on 127.0.0.1 until t ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: l.Addr().String(), opt: opt, arrived: make(chan struct{}, 1)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
	}))
	s.srv.Domain = "smtptest.localhost"
	// Clients hanging up mid-session is what several tests do on purpose.
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 50 << 20
	// Without TLS the test runs on loopback in the clear, where AUTH is still wanted.
	s.srv.AllowInsecureAuth = opt.TLS == nil
	if opt.TLS != nil {
		s.srv.TLSConfig = opt.TLS
		if opt.ImplicitTLS {
			l = tls.NewListener(l, opt.TLS)
		}
	}
	go s.srv.Serve(l)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// Stop closes the server: clients now find nothing listening.
func (s *Server) Stop() { s.srv.Close() }

// SetReply makes the server answer each mail with reply(m) at the end of DATA; nil
// accepts again.
func (s *Server) SetReply(reply func(Message) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply = reply
}

// Messages returns the mails accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// Arrived is signalled after a mail is accepted.
func (s *Server) Arrived() <-chan struct{} { return s.arrived }

type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.opt.XOAUTH2 != nil {
		return []string{"XOAUTH2"}
	}
	if ss.s.opt.Users == nil {
		return nil
	}
	if ss.s.opt.Mechanisms != nil {
		return ss.s.opt.Mechanisms
	}
	return []string{sasl.Plain, sasl.Login}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if want, ok := ss.s.opt.Users[user]; !ok || want != pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}
	switch mech {
	case "XOAUTH2":
		if ss.s.opt.XOAUTH2 != nil {
			return &xoauth2Server{check: ss.s.opt.XOAUTH2, ok: func() { ss.authed = true }}, nil
		}
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if (ss.s.opt.Users != nil || ss.s.opt.XOAUTH2 != nil) && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{From: ss.from, To: ss.to, Data: b}
	ss.s.mu.Lock()
	reply := ss.s.reply
	ss.s.mu.Unlock()
	if reply != nil {
		if err := reply(m); err != nil {
			return err
		}
	}
	if ss.s.opt.Deliver != nil {
		if err := ss.s.opt.Deliver(m); err != nil {
			var se *smtp.SMTPError
			if errors.As(err, &se) {
				return se
			}
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "delivery failed"}
		}
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, m)
	ss.s.mu.Unlock()
	select {
	case ss.s.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN (draft-murchison-sasl-login), which
// go-sasl implements only as a client. The user name may come as the initial response.
type loginServer struct {
	check   func(user, pass string) error
	user    string
	hasUser bool
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch {
	case !l.hasUser && response == nil:
		return []byte("Username:"), false, nil
	case !l.hasUser:
		l.user, l.hasUser = string(response), true
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(response))
}

// xoauth2Server is the server side of XOAUTH2: "user=U\x01auth=Bearer T\x01\x01".
type xoauth2Server struct {
	check  func(user, token string) bool
	ok     func()
	failed bool
}

func (x *xoauth2Server) Next(response []byte) ([]byte, bool, error) {
	if x.failed {
		// The client's empty answer to the error challenge.
		return nil, true, smtp.ErrAuthFailed
	}
	var user, token string
	for _, f := range strings.Split(string(response), "\x01") {
		if v, ok := strings.CutPrefix(f, "user="); ok {
			user = v
		}
		if v, ok := strings.CutPrefix(f, "auth=Bearer "); ok {
			token = v
		}
	}
	if user != "" && token != "" && x.check(user, token) {
		x.ok()
		return nil, true, nil
	}
	x.failed = true
	return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
}

// Certificate makes a throw-away certificate for 127.0.0.1 and localhost and returns
// the server's TLS config and a client config that trusts it.
func Certificate(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "smtptest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	client = &tls.Config{RootCAs: pool}
	return server, client
}

// Contains reports whether a message's data holds sub, for quick checks.
func (m Message) Contains(sub string) bool { return bytes.Contains(m.Data, []byte(sub)) }
