package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/casebookhq/casebook/casebook"
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

// throttleKey is a failure budget's row and its rule.
type throttleKey struct {
	key string
	t   Throttle
}

// throttleKeys are the budgets a login attempt spends, the password's and the second
// factor's alike: the device's own when the browser holds a valid device cookie for
// the account (device), else the account's and the address's.
func (s *Server) throttleKeys(email, ip, device string) []throttleKey {
	if device != "" {
		return []throttleKey{{device, s.opt.Account}}
	}
	return []throttleKey{{accountKey(email), s.opt.Account}, {ipKey(ip), s.opt.IP}}
}

func keyNames(keys []throttleKey) []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.key
	}
	return names
}

func accountKey(email string) string { return "account:" + strings.ToLower(strings.TrimSpace(email)) }
func ipKey(ip string) string         { return "ip:" + ip }

// login checks a password or a temporary password. Every refusal — unknown user,
// wrong password, disabled or locked account, locked address — gets the same page,
// status and headers. A refusal the lock decides costs no Argon2id hash, so hammering
// a locked account cannot starve real logins of the hasher; every other attempt costs
// exactly one, so the timing does not tell which accounts exist.
//
// The lock follows the device-cookie pattern (device.go): a browser holding a valid
// device cookie for the account is held to that cookie's own budget, any other client
// to the account's and its address's. The emailed temporary password is checked even
// while locked (a cheap SHA-256 of a 130-bit code): it proves control of the mailbox.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	start := time.Now()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	email := strings.TrimSpace(r.PostFormValue("email"))
	pw := r.PostFormValue("password")

	dkey, err := s.deviceKey(ctx)
	if err != nil {
		s.serverError(w, r, "device key", err)
		return
	}
	var user casebook.User
	known, looked := false, false
	lookup := func() error {
		u, err := s.store.UserByEmail(ctx, email)
		if err != nil && !errors.Is(err, casebook.ErrUserNotFound) {
			return err
		}
		user, known, looked = u, err == nil, true
		return nil
	}
	// Only a browser with device cookies needs the account looked up to pick its
	// budget; a stranger's lock is decided before any account is read.
	device := ""
	if s.hasDevices(r, dkey) {
		if err := lookup(); err != nil {
			s.serverError(w, r, "login", err)
			return
		}
		if known {
			device = s.knownDevice(r, dkey, user.ID)
		}
	}
	keys := s.throttleKeys(email, s.clientIP(r), device)
	locked, err := s.loginLocked(ctx, keys)
	if err != nil {
		s.serverError(w, r, "login throttle", err)
		return
	}
	// A locked request reads the account only for what may pass a lock: the emailed
	// temporary password.
	if !looked && (!locked || looksLikeCode(pw)) {
		if err := lookup(); err != nil {
			s.serverError(w, r, "login", err)
			return
		}
	}
	usable := known && !user.Disabled
	hash, mustChange, ok := "", false, false
	rehash := false
	if !locked {
		if known {
			if hash, mustChange, err = s.store.PasswordHash(ctx, user.ID); err != nil {
				s.serverError(w, r, "login", err)
				return
			}
		}
		// One hash whatever the account: an empty hash costs as much as a real one.
		var verr error
		hashStart := time.Now()
		rehash, verr = s.opt.Hasher.Verify(ctx, hash, pw)
		if verr != nil && ctx.Err() != nil {
			return
		}
		s.hashTime.observe(time.Since(hashStart))
		ok = usable && verr == nil
	}
	usedCode := false
	if !ok && (!locked || looksLikeCode(pw)) {
		// The same query for every account (user 0 matches nothing), so its cost
		// tells nothing either.
		uid := int64(0)
		if usable {
			uid = user.ID
		}
		if usedCode, err = s.store.UseResetCode(ctx, uid, casebook.ResetCodeHash(pw)); err != nil {
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
		case user.Disabled:
			outcome = "disabled"
		}
		if !locked {
			// The first key's attempt is counted already; the address's counts failures.
			for _, k := range keys[1:] {
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
		if locked {
			// A refusal by the lock answers no sooner than a checked password would:
			// a flood is served at the pace of honest failures, parked rather than
			// burning the CPU that real logins' hashes need.
			s.hashTime.wait(ctx, start)
		}
		s.render(w, r, http.StatusOK, "login", LoginPage{Layout: Layout{Title: "Log in"}, Email: email, Failed: true})
		return
	}

	// The password (or the emailed temporary password) is accepted.
	if rehash && !usedCode {
		if nh, err := s.opt.Hasher.Hash(ctx, pw); err == nil {
			if err := s.store.ReplacePasswordHash(ctx, user.ID, hash, nh); err != nil {
				s.log.WarnContext(ctx, "cannot rehash a password", "user", user.ID, slog.Any("error", err))
			}
		}
	}
	// With a second factor the login completes on the code page (mfa.go).
	if s.toSecondFactor(w, r, user, mustChange || usedCode, device) {
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
	// Only the budget this client spent is cleared: a stranger's failures keep the
	// account locked for strangers while its owner works from a known browser.
	for _, k := range keys[:1] {
		if err := s.store.ClearLoginFailures(ctx, k.key); err != nil {
			s.log.WarnContext(ctx, "cannot clear login failures", slog.Any("error", err))
		}
	}
	// A new token at login: a token planted before login (session fixation) is useless.
	if err := s.startSession(r, user, mustChange || usedCode); err != nil {
		s.serverError(w, r, "session", err)
		return
	}
	s.issueDevice(w, r, dkey, user.ID)
	if mustChange || usedCode {
		http.Redirect(w, r, "/password", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/cases", http.StatusSeeOther)
}

// loginLocked says whether any of keys is locked, and otherwise counts this attempt
// against the first key's budget. A lock seen is remembered for Options.LockMemory,
// so a crowd hammering a locked account costs no query at all.
func (s *Server) loginLocked(ctx context.Context, keys []throttleKey) (bool, error) {
	names := keyNames(keys)
	if s.locks.has(names) {
		return true, nil
	}
	// A cheap read turns most refusals away without a write; the claim then counts
	// the attempt atomically, so a crowd cannot slip past a lock that just ended.
	locked, err := s.store.LoginLocked(ctx, names...)
	if err == nil && !locked {
		locked, err = s.store.ClaimLoginAttempt(ctx, keys[0].key, keys[0].t.Window, keys[0].t.delay)
	}
	if err != nil {
		return false, err
	}
	if locked {
		s.locks.add(names)
	}
	return locked, nil
}

// looksLikeCode says whether pw could be a temporary password (casebook.NewTemporaryPassword:
// 26 base32 letters, forgiving case, spaces and dashes), so that a locked request
// typing anything else spends no query on the code.
func looksLikeCode(pw string) bool {
	n := 0
	for _, c := range pw {
		switch {
		case c == ' ' || c == '-' || c == '\t':
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '2' && c <= '7':
			n++
		default:
			return false
		}
	}
	return n == 26
}

// startSession gives the request a fresh session token for u, commits it and tags it
// with the user and the client so that it can be listed and ended.
func (s *Server) startSession(r *http.Request, u casebook.User, mustChange bool) error {
	ctx := r.Context()
	if err := s.sessions.RenewToken(ctx); err != nil {
		return err
	}
	now := time.Now()
	s.sessions.Put(ctx, keyUserID, u.ID)
	s.sessions.Put(ctx, keyEpoch, u.SessionEpoch)
	s.sessions.Put(ctx, keyMustChange, mustChange)
	s.sessions.Put(ctx, keyLoginAt, now.Unix())
	s.touchSession(ctx, now, now)
	token, _, err := s.sessions.Commit(ctx)
	if err != nil {
		return err
	}
	return s.store.TagSession(ctx, token, u.ID, s.clientIP(r), truncate(r.UserAgent(), 256))
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
