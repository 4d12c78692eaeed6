// Package web is casebook's web page: customers and staff log in, list their cases,
// open one, add attachments through the one write path (casebook.Service.AddUpdate),
// download them, and manage their password. Staff also work there: they see every
// case, reply, resolve, close, reopen and hand over cases, and release or drop
// quarantined mail, through the domain's use cases (casebook.Desk).
//
// Pages are server-rendered from the templates package (a base layout plus one file per
// page, parsed once in New); no JavaScript is needed. Sessions live in PostgreSQL
// (alexedwards/scs), so any number of instances may serve the same users. Every state
// change is guarded by http.CrossOriginProtection, every response carries a strict
// Content-Security-Policy, and every access to protected health information writes an
// audit row first: when the row cannot be written, the information is not served.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/password"
	"github.com/casebookhq/casebook/templates"
)

// Store is what the web page needs from storage (*postgres.Store).
type Store interface {
	UserByEmail(ctx context.Context, email string) (casebook.User, error)
	UserByID(ctx context.Context, id int64) (casebook.User, error)
	PasswordHash(ctx context.Context, userID int64) (hash string, mustChange bool, err error)
	ReplacePasswordHash(ctx context.Context, userID int64, old, new string) error
	// ChangePassword also ends the user's other sessions and returns the new session
	// epoch for the kept one.
	ChangePassword(ctx context.Context, userID int64, hash, keepToken string) (int64, error)
	TagSession(ctx context.Context, token string, userID int64, ip, userAgent string) error
	UserSessions(ctx context.Context, userID int64, currentToken string) ([]casebook.Session, error)
	// RevokeSessions ends every session of the user but keepToken's and returns the
	// new session epoch and how many ended.
	RevokeSessions(ctx context.Context, userID int64, keepToken string) (epoch int64, ended int, err error)
	// AppKey returns a shared secret, created on first use.
	AppKey(ctx context.Context, name string, size int) ([]byte, error)

	LoginLocked(ctx context.Context, keys ...string) (bool, error)
	RecordLoginFailure(ctx context.Context, key string, window time.Duration, delay func(failures int) time.Duration) error
	// ClaimLoginAttempt counts an attempt before the password is checked, unless the
	// key is locked, and reports whether it was.
	ClaimLoginAttempt(ctx context.Context, key string, window time.Duration, delay func(attempts int) time.Duration) (bool, error)
	ClearLoginFailures(ctx context.Context, key string) error
	PruneLoginThrottle(ctx context.Context, age time.Duration) (int64, error)

	ResetStore
	MFAStore
	UseResetCode(ctx context.Context, userID int64, codeHash string) (bool, error)
	QueueResetRequest(ctx context.Context, email, ip, userAgent string) error
	// NextResetRequest hands the oldest queued request to handle and removes it once
	// handled; it reports whether there was one.
	NextResetRequest(ctx context.Context, handle func(email, ip, userAgent string) error) (bool, error)

	Cases(ctx context.Context, f casebook.CaseFilter) ([]casebook.Case, error)
	CaseInScope(ctx context.Context, number, orgID, ownerID int64) (casebook.Case, error)
	AttachmentInScope(ctx context.Context, id, orgID, ownerID int64) (casebook.Attachment, int64, error)
	StaffStore
	Timeline(ctx context.Context, caseID int64) ([]casebook.TimelineEntry, error)

	// AuditBatch appends rows, in order, to the append-only audit log in one
	// transaction.
	AuditBatch(ctx context.Context, es []casebook.AuditEntry) error
}

// StaffStore is what the staff pages read: every case of the support team, the staff
// who may own one, and the quarantine queue.
type StaffStore interface {
	CaseByNumber(ctx context.Context, number int64) (casebook.Case, error)
	AttachmentWithCase(ctx context.Context, id int64) (casebook.Attachment, int64, error)
	StaffMembers(ctx context.Context) ([]casebook.User, error)
	Quarantine(ctx context.Context, f casebook.QuarantineFilter) ([]casebook.QuarantineItem, error)
	QuarantineByID(ctx context.Context, id int64) (casebook.QuarantineItem, error)
	PendingQuarantine(ctx context.Context) (int64, error)
}

// Writer is the one write path.
type Writer interface {
	AddUpdate(ctx context.Context, u casebook.Update) (casebook.Outcome, error)
}

// BlobOpener reads stored attachments (casebook/blob.Store).
type BlobOpener interface {
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// OpenRange reads n bytes of the content from off.
	OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
}

// Throttle is a failure budget: after Free failures within Window, each further
// failure locks the key for a delay that doubles from one second up to Max.
type Throttle struct {
	Free   int
	Window time.Duration
	Max    time.Duration
}

func (t Throttle) delay(failures int) time.Duration {
	over := failures - t.Free
	if over <= 0 {
		return 0
	}
	if over > 30 {
		return t.Max
	}
	return min(time.Second<<(over-1), t.Max)
}

// Options configures the web page. Zero values take the defaults in brackets.
type Options struct {
	// Addr is where Run listens [127.0.0.1:8080].
	Addr string
	// BaseURL is the page's public address; an https BaseURL turns on HSTS even when
	// TLS ends at a proxy in front.
	BaseURL string
	// TLSCert and TLSKey, when both set, make Run serve HTTPS itself.
	TLSCert, TLSKey string
	// BehindProxy takes the client's address from the last X-Forwarded-For entry, for
	// the login throttle and the audit log. Set it only when a reverse proxy that
	// appends that header is the sole way in; otherwise every client behind the proxy
	// shares one address, and a client could name any address it likes.
	BehindProxy bool
	// InsecureCookies drops the __Host- prefix and the Secure attribute, for plain-http
	// development on localhost only.
	InsecureCookies bool
	// MaxFileSize caps each uploaded file [25 MiB]; MaxFiles caps files per request [10].
	MaxFileSize int64
	MaxFiles    int
	// UploadTimeout is the whole deadline of one upload, body included [10 min]: a
	// client that stalls cannot hold an update (and its stored blobs) open at will.
	UploadTimeout time.Duration
	// Refs formats case references.
	Refs casebook.RefFormat
	// MessageIDDomain names the Message-IDs of temporary-password mails.
	MessageIDDomain string
	// Hasher hashes passwords [argon2id with password.DefaultParams, 4 at a time].
	Hasher *password.Hasher
	// Sessions is the session store, scs's postgresstore in production.
	Sessions scs.Store
	// Account limits failed logins per typed account name [5 free a day, up to 15 min];
	// IP limits them per client address on top [100 free an hour, up to 15 min].
	Account, IP Throttle
	// RequireMFA says whose accounts must enrol a TOTP second factor right after their
	// password [MFAStaff].
	RequireMFA MFAPolicy
	// MFAKey, when set, seals the TOTP secrets in the database (AES-256-GCM under a
	// key derived from it); without it they are stored as text.
	MFAKey []byte
	// LockMemory is how long an instance trusts a lock it saw without asking the
	// database again [1s]; negative never trusts it (tests that end locks by hand).
	LockMemory time.Duration
	// ResetTTL is how long an emailed temporary password works [30 min]; ResetsPerHour
	// caps requests per account [3].
	ResetTTL      time.Duration
	ResetsPerHour int
	// Desk carries out the staff's decisions (casebook.Desk); without it the staff
	// pages only read, and their forms answer 503.
	Desk Desk
	// QuarantineFiles reads the attachments of quarantined mail; without it the
	// quarantine page lists none.
	QuarantineFiles QuarantineFiles
	// Extra mounts handlers outside the session and cross-origin checks, pattern ->
	// handler, for endpoints that authenticate themselves (Slack's Events API signs
	// its requests). Patterns follow http.ServeMux and must not overlap the page's.
	Extra map[string]http.Handler
	// Wrap, when set, wraps the page's router, inside the session and cross-origin
	// checks, so that it sees each request's route pattern (r.Pattern) once routed:
	// the metrics' request timing.
	Wrap   func(http.Handler) http.Handler
	Logger *slog.Logger
}

// Server is the web page.
type Server struct {
	store    Store
	writer   Writer
	blobs    BlobOpener
	opt      Options
	log      *slog.Logger
	pages    *pages
	sessions *scs.SessionManager
	hsts     bool
	handler  http.Handler
	routes   []string
	audits   *auditBatcher
	box      *secretBox
	desk     Desk
	qfiles   QuarantineFiles
	// resets wakes the reset worker when this instance queued a request.
	resets chan struct{}

	devMu  sync.Mutex
	devKey []byte
	// locks remembers locks seen recently (lock_memory.go).
	locks lockSet
	// hashTime paces refusals by the lock (hash_pace.go).
	hashTime hashPace
}

// New builds the web page and parses its templates.
func New(store Store, writer Writer, blobs BlobOpener, opt Options) (*Server, error) {
	if opt.Addr == "" {
		opt.Addr = "127.0.0.1:8080"
	}
	if opt.MaxFileSize <= 0 {
		opt.MaxFileSize = 25 << 20
	}
	if opt.MaxFiles <= 0 {
		opt.MaxFiles = 10
	}
	if opt.UploadTimeout <= 0 {
		opt.UploadTimeout = 10 * time.Minute
	}
	if opt.Hasher == nil {
		opt.Hasher = password.NewHasher(password.DefaultParams, 4)
	}
	if opt.Account == (Throttle{}) {
		opt.Account = Throttle{Free: 5, Window: 24 * time.Hour, Max: 15 * time.Minute}
	}
	if opt.IP == (Throttle{}) {
		opt.IP = Throttle{Free: 100, Window: time.Hour, Max: 15 * time.Minute}
	}
	if opt.RequireMFA == "" {
		opt.RequireMFA = MFAStaff
	}
	if _, err := ParseMFAPolicy(string(opt.RequireMFA)); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if opt.LockMemory == 0 {
		opt.LockMemory = time.Second
	}
	if opt.ResetTTL <= 0 {
		opt.ResetTTL = 30 * time.Minute
	}
	if opt.ResetsPerHour <= 0 {
		opt.ResetsPerHour = 3
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Sessions == nil {
		return nil, errors.New("web: a session store is required")
	}
	if opt.BaseURL != "" {
		u, err := url.Parse(opt.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("web: base url %q is not an http(s) URL", opt.BaseURL)
		}
	}
	p, err := parsePages(templates.Pages, opt.Refs)
	if err != nil {
		return nil, err
	}
	s := &Server{store: store, writer: writer, blobs: blobs, opt: opt, log: opt.Logger, pages: p, desk: opt.Desk, qfiles: opt.QuarantineFiles,
		audits: &auditBatcher{write: store.AuditBatch}, resets: make(chan struct{}, 1), locks: lockSet{memory: opt.LockMemory}}
	if s.box, err = newSecretBox(opt.MFAKey); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if u, _ := url.Parse(opt.BaseURL); u != nil && u.Scheme == "https" {
		s.hsts = true
	}
	s.sessions = newSessionManager(opt)
	s.sessions.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		s.serverError(w, r, "session", err)
	}
	s.handler = s.buildHandler()
	return s, nil
}

// Handler returns the whole site, including Options.Extra.
func (s *Server) Handler() http.Handler { return s.handler }

// Routes lists the page's route patterns (not Options.Extra), for documentation and tests.
func (s *Server) Routes() []string { return s.routes }

// buildHandler mounts the page behind its checks. Static files and Extra are mounted
// beside it: they carry no session.
func (s *Server) buildHandler() http.Handler {
	app := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		s.routes = append(s.routes, pattern)
		app.Handle(pattern, h)
	}
	handle("GET /{$}", s.home)
	handle("GET /login", s.loginForm)
	handle("POST /login", s.login)
	handle("POST /logout", s.logout)
	handle("GET /login/code", s.codeForm)
	handle("POST /login/code", s.checkCode)
	handle("GET /mfa/enrol", s.enrolForm)
	handle("GET /mfa/enrol/qr.png", s.enrolQR)
	handle("POST /mfa/enrol", s.enrol)
	handle("GET /password/forgot", s.forgotForm)
	handle("POST /password/forgot", s.forgot)
	handle("GET /password", s.authed(s.passwordForm))
	handle("POST /password", s.authed(s.changePassword))
	handle("GET /account/sessions", s.authed(s.sessionList))
	handle("POST /account/sessions/end-others", s.authed(s.endOtherSessions))
	handle("GET /cases", s.authed(s.caseList))
	handle("GET /cases/{ref}", s.authed(s.casePage))
	handle("POST /cases/{ref}/attachments", s.authed(s.upload))
	handle("GET /attachments/{id}", s.authed(s.download))
	// Staff pages: a customer gets the unknown page's 404 and an audit row.
	handle("POST /cases/{ref}/reply", s.staffAction(s.reply))
	handle("POST /cases/{ref}/status", s.staffAction(s.setStatus))
	handle("POST /cases/{ref}/owner", s.staffAction(s.reassign))
	handle("GET /quarantine", s.staffOnly(s.quarantineList))
	handle("GET /quarantine/{id}", s.staffOnly(s.quarantineView))
	handle("GET /quarantine/{id}/files/{n}", s.staffOnly(s.quarantineFile))
	handle("POST /quarantine/{id}/release", s.staffAction(s.quarantineRelease))
	handle("POST /quarantine/{id}/drop", s.staffAction(s.quarantineDrop))
	app.Handle("/", http.HandlerFunc(s.notFound))
	sort.Strings(s.routes)

	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusForbidden, "This request came from another site and was refused.")
	}))

	var page http.Handler = app
	if s.opt.Wrap != nil {
		page = s.opt.Wrap(app)
	}
	root := http.NewServeMux()
	root.Handle("/", s.secureHeaders(csrf.Handler(s.sessions.LoadAndSave(page))))
	root.Handle("GET /static/", s.secureHeaders(staticHandler()))
	for pattern, h := range s.opt.Extra {
		root.Handle(pattern, h)
	}
	return root
}

// Run serves the page on Options.Addr until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opt.Addr)
	if err != nil {
		return fmt.Errorf("web: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the page on ln until ctx ends. It prunes the login throttle table
// while it runs.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := s.httpServer()
	if s.opt.TLSCert != "" && s.opt.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(s.opt.TLSCert, s.opt.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("web: tls: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go s.pruneLoop(ctx)
	go s.resetLoop(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("web page listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("web: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("web: shutdown: %w", err)
	}
	return nil
}

// httpServer bounds what a client may make the server hold: a slow client cannot keep
// a connection open by trickling headers (Slowloris), nor send megabytes of them.
// There is no overall read or write timeout, because uploads and downloads of large
// files on slow links are legitimate; their size is capped instead.
func (s *Server) httpServer() *http.Server {
	return &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

func (s *Server) pruneLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			age := max(s.opt.Account.Window, s.opt.IP.Window)
			if _, err := s.store.PruneLoginThrottle(ctx, age); err != nil && ctx.Err() == nil {
				s.log.Warn("cannot prune the login throttle", slog.Any("error", err))
			}
		}
	}
}
