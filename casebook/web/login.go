package web

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"casebook/casebook"
)

// maxFormBytes bounds the small forms (login, password); uploads have their own caps.
const maxFormBytes = 16 << 10

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	if s.sessions.GetInt64(r.Context(), keyUserID) != 0 {
		http.Redirect(w, r, "/cases", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login", LoginPage{Layout: Layout{Title: "Log in", Flash: s.sessions.PopString(r.Context(), keyFlash)}})
}

func accountKey(email string) string { return "account:" + strings.ToLower(strings.TrimSpace(email)) }
func ipKey(ip string) string         { return "ip:" + ip }

// login checks a password or a temporary password. Every refusal — unknown user,
// wrong password, locked account or address — gets the same page, status and
// headers, and costs the same one Argon2id hash, so neither the answer nor its timing
// tells an attacker which accounts exist.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	email := strings.TrimSpace(r.PostFormValue("email"))
	pw := r.PostFormValue("password")
	ip := s.clientIP(r)
	acct, ipk := accountKey(email), ipKey(ip)

	locked, err := s.store.LoginLocked(ctx, acct, ipk)
	if err != nil {
		s.serverError(w, r, "login throttle", err)
		return
	}
	user, uerr := s.store.UserByEmail(ctx, email)
	if uerr != nil && !errors.Is(uerr, casebook.ErrUserNotFound) {
		s.serverError(w, r, "login", uerr)
		return
	}
	known := uerr == nil
	hash, mustChange := "", false
	if known {
		if hash, mustChange, err = s.store.PasswordHash(ctx, user.ID); err != nil {
			s.serverError(w, r, "login", err)
			return
		}
	}
	// One hash whatever happens: an empty hash costs as much as a real one.
	rehash, verr := s.opt.Hasher.Verify(ctx, hash, pw)
	if verr != nil && ctx.Err() != nil {
		return
	}
	ok := known && !locked && verr == nil
	usedCode := false
	if known && !locked && !ok {
		if usedCode, err = s.store.UseResetCode(ctx, user.ID, codeHash(pw)); err != nil {
			s.serverError(w, r, "login", err)
			return
		}
		ok = usedCode
	}

	var who *casebook.User
	if known {
		who = &user
	}
	if !ok {
		outcome := "failure"
		switch {
		case locked:
			outcome = "locked"
		case !known:
			outcome = "unknown_user"
		}
		if !locked {
			for _, k := range []struct {
				key string
				t   Throttle
			}{{acct, s.opt.Account}, {ipk, s.opt.IP}} {
				if err := s.store.RecordLoginFailure(ctx, k.key, k.t.Window, k.t.delay); err != nil {
					s.serverError(w, r, "login throttle", err)
					return
				}
			}
		}
		if err := s.audit(r, who, "login", "user:"+truncate(strings.ToLower(email), 320), outcome); err != nil {
			s.serverError(w, r, "audit", err)
			return
		}
		s.render(w, r, http.StatusOK, "login", LoginPage{Layout: Layout{Title: "Log in"}, Email: email, Failed: true})
		return
	}

	if rehash && !usedCode {
		if nh, err := s.opt.Hasher.Hash(ctx, pw); err == nil {
			if err := s.store.ReplacePasswordHash(ctx, user.ID, hash, nh); err != nil {
				s.log.WarnContext(ctx, "cannot rehash a password", "user", user.ID, slog.Any("error", err))
			}
		}
	}
	// With a second factor the login completes on the code page (mfa.go).
	if s.toSecondFactor(w, r, user, mustChange || usedCode) {
		return
	}
	outcome := "success"
	if usedCode {
		outcome = "success_temporary_password"
	}
	if err := s.audit(r, who, "login", "user:"+user.Email, outcome); err != nil {
		s.serverError(w, r, "audit", err)
		return
	}
	if err := s.store.ClearLoginFailures(ctx, acct); err != nil {
		s.log.WarnContext(ctx, "cannot clear login failures", slog.Any("error", err))
	}
	// A new token at login: a token planted before login (session fixation) is useless.
	if err := s.startSession(r, user.ID, mustChange || usedCode); err != nil {
		s.serverError(w, r, "session", err)
		return
	}
	if mustChange || usedCode {
		http.Redirect(w, r, "/password", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/cases", http.StatusSeeOther)
}

// startSession gives the request a fresh session token for userID, commits it and
// tags it with the user so that a later password change can end it.
func (s *Server) startSession(r *http.Request, userID int64, mustChange bool) error {
	ctx := r.Context()
	if err := s.sessions.RenewToken(ctx); err != nil {
		return err
	}
	now := time.Now()
	s.sessions.Put(ctx, keyUserID, userID)
	s.sessions.Put(ctx, keyMustChange, mustChange)
	s.sessions.Put(ctx, keyLoginAt, now.Unix())
	s.touchSession(ctx, now, now)
	token, _, err := s.sessions.Commit(ctx)
	if err != nil {
		return err
	}
	return s.store.TagSession(ctx, token, userID)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if id := s.sessions.GetInt64(ctx, keyUserID); id != 0 {
		if u, err := s.store.UserByID(ctx, id); err == nil {
			s.audit(r, &u, "logout", "user:"+u.Email, "success")
		}
	}
	if err := s.sessions.Destroy(ctx); err != nil {
		s.serverError(w, r, "logout", err)
		return
	}
	s.sessions.Put(ctx, keyFlash, "You are logged out.")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
