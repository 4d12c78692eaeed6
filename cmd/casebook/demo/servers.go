package demo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-smtp"
)

// IMAPServer is go-imap's in-memory IMAP server on a loopback port, holding one
// user's mailboxes. It speaks IMAP without TLS: it never leaves 127.0.0.1.
type IMAPServer struct {
	// Addr is the host:port it listens on.
	Addr     string
	User     string
	Password string

	srv  *imapserver.Server
	user *imapmemserver.User
	done chan struct{}
}

// StartIMAP listens on 127.0.0.1 (a free port) with one user who has folders.
func StartIMAP(user, password string, folders []string, log *slog.Logger) (*IMAPServer, error) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, password)
	for _, f := range folders {
		if err := u.Create(f, nil); err != nil {
			return nil, fmt.Errorf("demo imap: create %s: %w", f, err)
		}
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		// MOVE and UIDPLUS let the poller file mail the way it does on Dovecot.
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapMove: {}, imap.CapUIDPlus: {}},
		InsecureAuth: true,
		Logger:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo imap: %w", err)
	}
	s := &IMAPServer{Addr: ln.Addr().String(), User: user, Password: password, srv: srv, user: u, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		srv.Serve(ln)
	}()
	return s, nil
}

// Append puts a message into folder as if it had been delivered at t.
func (s *IMAPServer) Append(folder string, msg []byte, t time.Time) error {
	_, err := s.user.Append(folder, literal{bytes.NewReader(msg)}, &imap.AppendOptions{Time: t})
	if err != nil {
		return fmt.Errorf("demo imap: append to %s: %w", folder, err)
	}
	return nil
}

// Count returns how many messages folder holds.
func (s *IMAPServer) Count(folder string) (uint32, error) {
	st, err := s.user.Status(folder, &imap.StatusOptions{NumMessages: true})
	if err != nil {
		return 0, fmt.Errorf("demo imap: status of %s: %w", folder, err)
	}
	return *st.NumMessages, nil
}

// Close stops the server and waits for it.
func (s *IMAPServer) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }

// Mail is one message the SMTP sink accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
	// File is where the sink saved it.
	File string
}

// SMTPSink is an SMTP server on a loopback port that accepts every mail, keeps it, and
// saves it as an .eml file in a directory so that the person trying casebook can open
// what it sent. It delivers nothing anywhere.
type SMTPSink struct {
	// Addr is the host:port it listens on.
	Addr string
	dir  string

	srv  *smtp.Server
	mu   sync.Mutex
	mail []Mail
	// arrived is signalled, without blocking, after each mail.
	arrived chan struct{}
	done    chan struct{}
}

// StartSMTP listens on 127.0.0.1 (a free port) and saves mail under dir.
func StartSMTP(dir string, log *slog.Logger) (*SMTPSink, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("demo smtp: %w", err)
	}
	s := &SMTPSink{dir: dir, arrived: make(chan struct{}, 1), done: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }))
	s.srv.Domain = "smtp.demo.localhost"
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.MaxMessageBytes = 50 << 20
	s.srv.AllowInsecureAuth = true
	s.srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo smtp: %w", err)
	}
	s.Addr = ln.Addr().String()
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	return s, nil
}

// Mail returns the mail accepted so far.
func (s *SMTPSink) Mail() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mail...)
}

// Arrived is signalled after a mail is accepted.
func (s *SMTPSink) Arrived() <-chan struct{} { return s.arrived }

// Close stops the sink and waits for it.
func (s *SMTPSink) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

func (s *SMTPSink) keep(m Mail) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.File = filepath.Join(s.dir, fmt.Sprintf("%03d.eml", len(s.mail)+1))
	if err := os.WriteFile(m.File, m.Data, 0o600); err != nil {
		return err
	}
	s.mail = append(s.mail, m)
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	return nil
}

type sinkSession struct {
	s    *SMTPSink
	from string
	to   []string
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(ss.to) == 0 {
		return errors.New("no recipients")
	}
	if err := ss.s.keep(Mail{From: ss.from, To: ss.to, Data: b}); err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot keep the mail"}
	}
	return nil
}

func (ss *sinkSession) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *sinkSession) Logout() error { return nil }
