package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/password"
)

// ResetStore stores temporary passwords (reset codes) with the mail that carries them.
type ResetStore interface {
	IssueResetCode(ctx context.Context, userID int64, codeHash, reason string, expires time.Time, perHour int, mail casebook.OutboxMail) (bool, error)
}

// TemporaryPassword says how to issue one.
type TemporaryPassword struct {
	Reason string
	TTL    time.Duration
	// PerHour caps codes per account per hour; zero does not cap (staff commands).
	PerHour         int
	MessageIDDomain string
}

// IssueTemporaryPassword makes a reset code for u and queues the mail of kind
// temporary_password that carries it, in one transaction. The code has 130 random
// bits (rand.Text), so it cannot be guessed within any throttle, and only its SHA-256 is
// stored. It replaces any earlier code, works once, and leaves the current password
// working until it is used, so asking for one cannot lock anybody out. issued is false
// when the hourly cap was reached.
func IssueTemporaryPassword(ctx context.Context, st ResetStore, u casebook.User, tp TemporaryPassword) (code string, issued bool, err error) {
	if tp.Reason != casebook.ReasonReset && tp.Reason != casebook.ReasonNewAccount {
		return "", false, fmt.Errorf("temporary password: %w: reason %q", casebook.ErrInvalidInput, tp.Reason)
	}
	if tp.MessageIDDomain == "" {
		tp.MessageIDDomain = "casebook.invalid"
	}
	code = casebook.NewTemporaryPassword()
	expires := time.Now().Add(tp.TTL).UTC().Truncate(time.Second)
	mail := casebook.OutboxMail{
		Kind:      casebook.MailTemporaryPassword,
		UserID:    &u.ID,
		Recipient: u.Email,
		MessageID: casebook.NewMessageID(tp.MessageIDDomain),
		Data: casebook.TemporaryPasswordMail{
			Password:  code,
			ExpiresAt: expires,
			Name:      u.Name,
			Reason:    tp.Reason,
		},
	}
	issued, err = st.IssueResetCode(ctx, u.ID, casebook.ResetCodeHash(code), tp.Reason, expires, tp.PerHour, mail)
	if err != nil {
		return "", false, err
	}
	if !issued {
		return "", false, nil
	}
	return code, true, nil
}

func (s *Server) forgotForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "forgot", ForgotPage{Layout: Layout{Title: "Forgot your password?"}})
}

// forgot always answers the same, whether the account exists, was asked for too often,
// or the address is throttled. It does the same work for a known and an unknown
// address — spend the address's budget, queue the address — so its timing tells
// nothing either; the reset worker (reset_worker.go) looks the address up, issues the
// code and writes the audit row off the request path.
func (s *Server) forgot(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	email := strings.TrimSpace(r.PostFormValue("email"))
	ip := s.clientIP(r)
	ipk := ipKey(ip)
	locked, err := s.store.LoginLocked(ctx, ipk)
	if err != nil {
		s.serverError(w, r, "reset throttle", err)
		return
	}
	if locked || email == "" {
		if err := s.audit(r, nil, "reset_request", "user:"+truncate(strings.ToLower(email), 320), "throttled"); err != nil {
			s.serverError(w, r, "audit", err)
			return
		}
	} else {
		// Each request spends the address's budget, so one client cannot mail-bomb
		// many accounts.
		if err := s.store.RecordLoginFailure(ctx, ipk, s.opt.IP.Window, s.opt.IP.delay); err != nil {
			s.serverError(w, r, "reset throttle", err)
			return
		}
		if err := s.store.QueueResetRequest(ctx, truncate(email, 320), ip, truncate(r.UserAgent(), 256)); err != nil {
			s.serverError(w, r, "reset", err)
			return
		}
		select {
		case s.resets <- struct{}{}:
		default:
		}
	}
	s.render(w, r, http.StatusOK, "forgot", ForgotPage{Layout: Layout{Title: "Forgot your password?"}, Sent: true})
}

func (s *Server) passwordPage(v viewer, problem string) PasswordPage {
	return PasswordPage{
		Layout:  Layout{Title: "Choose a new password", User: &v.User, Restricted: v.MustChange},
		Forced:  v.MustChange,
		Problem: problem,
		Min:     password.MinLength,
	}
}

func (s *Server) passwordForm(w http.ResponseWriter, r *http.Request, v viewer) {
	s.render(w, r, http.StatusOK, "password", s.passwordPage(v, ""))
}

// changePassword sets a new password. After a temporary password the current one is
// not asked for (the user just proved control of their mailbox); otherwise it is,
// and a wrong one counts as a failed login.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, v viewer) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	current, next, confirm := r.PostFormValue("current"), r.PostFormValue("new"), r.PostFormValue("confirm")
	refuse := func(msg string) {
		s.audit(r, &v.User, "password_change", "user:"+v.User.Email, "refused")
		s.render(w, r, http.StatusUnprocessableEntity, "password", s.passwordPage(v, msg))
	}
	if !v.MustChange {
		acct := accountKey(v.User.Email)
		locked, err := s.store.LoginLocked(ctx, acct, ipKey(s.clientIP(r)))
		if err != nil {
			s.serverError(w, r, "password throttle", err)
			return
		}
		hash, _, err := s.store.PasswordHash(ctx, v.User.ID)
		if err != nil {
			s.serverError(w, r, "password", err)
			return
		}
		_, verr := s.opt.Hasher.Verify(ctx, hash, current)
		if locked || verr != nil {
			if !locked {
				if err := s.store.RecordLoginFailure(ctx, acct, s.opt.Account.Window, s.opt.Account.delay); err != nil {
					s.serverError(w, r, "password throttle", err)
					return
				}
			}
			refuse("Your current password is not right, or there were too many attempts. Try again in a few minutes.")
			return
		}
	}
	if next != confirm {
		refuse("The two new passwords differ. Type the same password twice.")
		return
	}
	local, _, _ := strings.Cut(v.User.Email, "@")
	if err := password.Check(next, v.User.Email, local, v.User.Name); err != nil {
		why := strings.TrimPrefix(err.Error(), password.ErrWeak.Error()+": ")
		refuse("Choose another password: " + why + ".")
		return
	}
	if !v.MustChange && next == current {
		refuse("The new password is your current one. Choose another.")
		return
	}
	hash, err := s.opt.Hasher.Hash(ctx, next)
	if err != nil {
		s.serverError(w, r, "hash password", err)
		return
	}
	// A new token, and every other session of the user ends: whoever knew the old
	// password is out.
	if err := s.sessions.RenewToken(ctx); err != nil {
		s.serverError(w, r, "session", err)
		return
	}
	s.touchSession(ctx, time.Unix(s.sessions.GetInt64(ctx, keyLoginAt), 0), time.Now())
	token, _, err := s.sessions.Commit(ctx)
	if err != nil {
		s.serverError(w, r, "session", err)
		return
	}
	if err := s.store.TagSession(ctx, token, v.User.ID, s.clientIP(r), truncate(r.UserAgent(), 256)); err != nil {
		s.serverError(w, r, "session", err)
		return
	}
	epoch, err := s.store.ChangePassword(ctx, v.User.ID, hash, token)
	if err != nil {
		s.serverError(w, r, "change password", err)
		return
	}
	s.sessions.Put(ctx, keyEpoch, epoch)
	s.store.ClearLoginFailures(ctx, accountKey(v.User.Email))
	if err := s.audit(r, &v.User, "password_change", "user:"+v.User.Email, "success"); err != nil {
		s.serverError(w, r, "audit", err)
		return
	}
	s.sessions.Put(ctx, keyMustChange, false)
	s.sessions.Put(ctx, keyFlash, "Your new password is set.")
	http.Redirect(w, r, "/cases", http.StatusSeeOther)
}
