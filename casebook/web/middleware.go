package web

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/templates"
)

// Session keys.
const (
	keyUserID     = "uid"
	keyMustChange = "must_change"
	keyFlash      = "flash"
	keyLoginAt    = "login_at"
	keySeen       = "seen"
	keyEpoch      = "epoch"
)

// Session lifetimes: 15 minutes idle and 8 hours in all, the usual bounds for an
// application that shows health records (OWASP ASVS V3.3).
//
// Both are enforced here rather than by scs's IdleTimeout, which rewrites the session
// row on every request: a write transaction, with its fsync, per page view. Instead
// the row's expiry is moved forward at most once every sessionTouch, so a session
// ends between 14 and 15 minutes after its last request, both in the database (the
// row expires) and here (the "seen" time is checked).
const (
	sessionIdle     = 15 * time.Minute
	sessionLifetime = 8 * time.Hour
	sessionTouch    = time.Minute
)

// sessionCheck says whether a session that logged in at login and was last touched at
// seen has ended at now, and whether it should be touched now.
func sessionCheck(now, login, seen time.Time) (ended, touch bool) {
	if now.Sub(seen) >= sessionIdle || now.Sub(login) >= sessionLifetime || seen.After(now.Add(time.Minute)) {
		return true, false
	}
	return false, now.Sub(seen) >= sessionTouch
}

// touchSession records activity and moves the session's expiry to the idle limit,
// never past the absolute one.
func (s *Server) touchSession(ctx context.Context, login, now time.Time) {
	s.sessions.Put(ctx, keySeen, now.Unix())
	s.sessions.SetDeadline(ctx, minTime(now.Add(sessionIdle), login.Add(sessionLifetime)))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// pageCSP allows nothing but the page's own stylesheet and images and forms posting
// back to itself: no script at all, no framing (clickjacking), no <base> rewriting.
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func newSessionManager(opt Options) *scs.SessionManager {
	sm := scs.New()
	sm.Store = opt.Sessions
	// A new session (and a renewed token) lives for the idle limit; touchSession
	// extends it while the user is active, up to sessionLifetime after login.
	sm.Lifetime = sessionIdle
	// The __Host- prefix makes the browser refuse the cookie unless it is Secure, has
	// Path=/ and no Domain: no subdomain or plain-http page can set or shadow it
	// (RFC 6265bis §4.1.3.2).
	sm.Cookie.Name = "__Host-casebook"
	sm.Cookie.Secure = true
	if opt.InsecureCookies {
		sm.Cookie.Name = "casebook"
		sm.Cookie.Secure = false
	}
	sm.Cookie.Path = "/"
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	// A session cookie (no Expires): it ends with the browser as well as on the server.
	sm.Cookie.Persist = false
	return sm
}

// secureHeaders sets the headers every response carries. Handlers that serve files
// override Content-Security-Policy and Cache-Control.
func (s *Server) secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		// Pages show health information: no browser or proxy may keep a copy.
		h.Set("Cache-Control", "no-store")
		if r.TLS != nil || s.hsts {
			// Browsers ignore HSTS received over plain http (RFC 6797 §8.1), so sending
			// it whenever the public address is https is safe behind a TLS proxy.
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

func staticHandler() http.Handler {
	sub, err := fs.Sub(templates.Pages, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	files := http.StripPrefix("/static/", http.FileServerFS(filesOnly{sub}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Stylesheets hold no health information and may be cached.
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// filesOnly hides directories, so that the file server serves files and never lists
// what a directory holds.
type filesOnly struct{ fs.FS }

func (f filesOnly) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := file.Stat(); err != nil || st.IsDir() {
		file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return file, nil
}

// viewer is the logged-in user of a request.
type viewer struct {
	User       casebook.User
	MustChange bool
}

// scope returns the case scope of v: a customer sees the org's cases; for staff, who
// see every case, it is the cases they own (the list's Mine tab).
func (v viewer) scope() (orgID, ownerID int64) {
	if v.User.Staff {
		return 0, v.User.ID
	}
	if v.User.OrgID != nil {
		return *v.User.OrgID, 0
	}
	return 0, 0
}

type authedHandler func(w http.ResponseWriter, r *http.Request, v viewer)

// authed admits logged-in users. Until a user who logged in with a temporary password
// has chosen a new one, only the password page answers.
func (s *Server) authed(h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id := s.sessions.GetInt64(ctx, keyUserID)
		if id == 0 {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		now := time.Now()
		login := time.Unix(s.sessions.GetInt64(ctx, keyLoginAt), 0)
		ended, touch := sessionCheck(now, login, time.Unix(s.sessions.GetInt64(ctx, keySeen), 0))
		if ended {
			if err := s.sessions.Destroy(ctx); err != nil {
				s.serverError(w, r, "session", err)
				return
			}
			s.sessions.Put(ctx, keyFlash, "Your session ended. Please log in again.")
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if touch {
			s.touchSession(ctx, login, now)
		}
		u, err := s.store.UserByID(ctx, id)
		// A disabled account, or sessions ended since this one began (disable, revoke,
		// a password change or reset): the session is over at this request, even if an
		// earlier request in flight wrote its row back.
		if errors.Is(err, casebook.ErrUserNotFound) || (err == nil && (u.Disabled || u.SessionEpoch != s.sessions.GetInt64(ctx, keyEpoch))) {
			if err := s.sessions.Destroy(ctx); err != nil {
				s.serverError(w, r, "session", err)
				return
			}
			s.sessions.Put(ctx, keyFlash, "Your session ended. Please log in again.")
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if err != nil {
			s.serverError(w, r, "load user", err)
			return
		}
		v := viewer{User: u, MustChange: s.sessions.GetBool(ctx, keyMustChange)}
		if v.MustChange && r.URL.Path != "/password" {
			http.Redirect(w, r, "/password", http.StatusSeeOther)
			return
		}
		h(w, r, v)
	}
}

// clientIP is the address the request came from: the peer, or behind a reverse proxy
// the last X-Forwarded-For entry, the one the proxy itself appended (earlier entries
// are whatever the client claimed). An IPv6 client is counted by its /64, since one
// host usually holds the whole prefix.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if s.opt.BehindProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			list := strings.Split(xff[len(xff)-1], ",")
			if last := strings.TrimSpace(list[len(list)-1]); last != "" {
				host = last
			}
		}
	}
	return addrKey(host)
}

func addrKey(host string) string {
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// audit appends an audit row for the request. Callers that serve health information
// stop when it fails.
func (s *Server) audit(r *http.Request, u *casebook.User, action, object, outcome string) error {
	e := casebook.AuditEntry{Action: action, Object: object, Outcome: outcome, IP: s.clientIP(r), UserAgent: truncate(r.UserAgent(), 256)}
	if u != nil {
		e.UserID = &u.ID
		e.OrgID = u.OrgID
	}
	// The row is written even when the client has gone away.
	if err := s.audits.append(e); err != nil {
		s.log.ErrorContext(r.Context(), "cannot write the audit log", "action", action, "object", object, slog.Any("error", err))
		return err
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/cases", http.StatusSeeOther)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusNotFound, "There is no such page.")
}

// serverError logs the cause and shows the user a page that gives nothing away.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.ErrorContext(r.Context(), "web request failed", "what", what, "path", r.URL.Path, slog.Any("error", err))
	s.renderError(w, r, http.StatusInternalServerError, "Something went wrong on our side. Please try again in a moment.")
}
