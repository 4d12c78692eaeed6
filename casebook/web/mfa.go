package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"net/http"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

// MFAPolicy says whose accounts must have a second factor.
type MFAPolicy string

// The policies of --require-mfa. A user who has a factor is always asked for a code,
// whatever the policy.
const (
	// MFAStaff sends staff accounts without a factor to enrolment; the default, since
	// staff can read every case they own.
	MFAStaff MFAPolicy = "staff"
	// MFAAll sends every account without a factor to enrolment.
	MFAAll MFAPolicy = "all"
	// MFAOff sends nobody to enrolment.
	MFAOff MFAPolicy = "off"
)

// ErrBadMFAPolicy refuses a --require-mfa value other than staff, all and off.
var ErrBadMFAPolicy = errors.New("require-mfa must be staff, all or off")

// ParseMFAPolicy reads a --require-mfa value.
func ParseMFAPolicy(s string) (MFAPolicy, error) {
	switch p := MFAPolicy(s); p {
	case MFAStaff, MFAAll, MFAOff:
		return p, nil
	}
	return "", fmt.Errorf("%w: %q", ErrBadMFAPolicy, s)
}

func (p MFAPolicy) requires(u casebook.User) bool {
	return p == MFAAll || (p == MFAStaff && u.Staff)
}

// MFAStore stores second factors (*postgres.Store).
type MFAStore interface {
	SecondFactor(ctx context.Context, userID int64) (casebook.SecondFactor, error)
	BeginSecondFactor(ctx context.Context, userID int64, secret string) error
	ConfirmSecondFactor(ctx context.Context, userID int64, secret string, step int64, recoveryHashes []string) (bool, error)
	UseTOTPStep(ctx context.Context, userID, step int64) (bool, error)
	UseRecoveryCode(ctx context.Context, userID int64, codeHash string) (ok bool, left int, err error)
}

// Session keys of the half-logged-in state: the password was right, the code is
// pending. keyUserID is not set until the code is, so authed admits nothing.
const (
	keyMFAUser       = "mfa_uid"
	keyMFAAt         = "mfa_at"
	keyMFAMustChange = "mfa_must_change"
	// keyMFADevice is the throttle key of the browser's device cookie, when the
	// password was taken on it: the code then spends the same budget.
	keyMFADevice = "mfa_device"
	// keyMFAEnrol is the SHA-256 of the stored secret this session's enrolment made:
	// an enrolment started by another login (someone else holding the password) is
	// never shown here, nor confirmed from here.
	keyMFAEnrol = "mfa_enrol"
)

// mfaPendingTTL bounds the half-logged-in state: the password must be typed again
// after it.
const mfaPendingTTL = 10 * time.Minute

// CodePage asks for a TOTP or recovery code after the password.
type CodePage struct {
	Layout
	// Failed says the last code was refused, without saying why.
	Failed bool
}

// EnrolPage sets up a TOTP factor: a QR code, the same secret as text, and a form to
// confirm it with a first code.
type EnrolPage struct {
	Layout
	// Secret is the base32 secret grouped by four.
	Secret  string
	Problem string
}

// RecoveryPage shows the recovery codes, once, after enrolment.
type RecoveryPage struct {
	Layout
	Codes []string
	// Next is where the user goes on.
	Next string
}

// toSecondFactor is called once a password is accepted. When the user has a factor,
// or the policy asks for one they lack, it puts the session in the half-logged-in
// state, sends the browser to the code or the enrolment page and returns true; the
// login completes there. The account's failures are not cleared until then, so that
// wrong codes and wrong passwords spend one budget.
func (s *Server) toSecondFactor(w http.ResponseWriter, r *http.Request, u casebook.User, mustChange bool, device string) bool {
	ctx := r.Context()
	f, err := s.store.SecondFactor(ctx, u.ID)
	if err != nil && !errors.Is(err, casebook.ErrNoSecondFactor) {
		s.serverError(w, r, "second factor", err)
		return true
	}
	has := err == nil && f.Confirmed
	if !has && !s.opt.RequireMFA.requires(u) {
		return false
	}
	outcome, next := "password_ok_code_pending", "/login/code"
	if !has {
		outcome, next = "password_ok_enrol_pending", "/mfa/enrol"
	}
	if err := s.audit(r, &u, "login", "user:"+u.Email, outcome); err != nil {
		s.serverError(w, r, "audit", err)
		return true
	}
	// A new token here too: whoever planted the old one learns nothing of this state.
	if err := s.sessions.RenewToken(ctx); err != nil {
		s.serverError(w, r, "session", err)
		return true
	}
	s.sessions.Remove(ctx, keyUserID)
	s.sessions.Remove(ctx, keyMFAEnrol)
	s.sessions.Put(ctx, keyMFAUser, u.ID)
	s.sessions.Put(ctx, keyMFAAt, time.Now().Unix())
	s.sessions.Put(ctx, keyMFAMustChange, mustChange)
	s.sessions.Put(ctx, keyMFADevice, device)
	http.Redirect(w, r, next, http.StatusSeeOther)
	return true
}

// pendingUser returns the user of a half-logged-in session. Without one, or after
// mfaPendingTTL, it sends the browser back to the login page and returns false.
func (s *Server) pendingUser(w http.ResponseWriter, r *http.Request) (casebook.User, bool) {
	ctx := r.Context()
	id := s.sessions.GetInt64(ctx, keyMFAUser)
	at := time.Unix(s.sessions.GetInt64(ctx, keyMFAAt), 0)
	if id != 0 && time.Since(at) >= mfaPendingTTL {
		s.endPending(ctx)
		s.sessions.Put(ctx, keyFlash, "That took too long. Please log in again.")
		id = 0
	}
	if id == 0 {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return casebook.User{}, false
	}
	u, err := s.store.UserByID(ctx, id)
	if errors.Is(err, casebook.ErrUserNotFound) || err == nil && u.Disabled {
		s.endPending(ctx)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return casebook.User{}, false
	}
	if err != nil {
		s.serverError(w, r, "load user", err)
		return casebook.User{}, false
	}
	return u, true
}

func (s *Server) endPending(ctx context.Context) {
	for _, k := range []string{keyMFAUser, keyMFAAt, keyMFAMustChange, keyMFADevice, keyMFAEnrol} {
		s.sessions.Remove(ctx, k)
	}
}

// completeLogin ends the half-logged-in state with a full session.
func (s *Server) completeLogin(w http.ResponseWriter, r *http.Request, u casebook.User, outcome string) (next string, ok bool) {
	ctx := r.Context()
	if err := s.audit(r, &u, "login", "user:"+u.Email, outcome); err != nil {
		s.serverError(w, r, "audit", err)
		return "", false
	}
	// Only the budget this client spent is cleared, as for a login without a code.
	if err := s.store.ClearLoginFailures(ctx, s.pendingKeys(r, u)[0].key); err != nil {
		s.log.WarnContext(ctx, "cannot clear login failures", slog.Any("error", err))
	}
	dkey, err := s.deviceKey(ctx)
	if err != nil {
		s.serverError(w, r, "device key", err)
		return "", false
	}
	mustChange := s.sessions.GetBool(ctx, keyMFAMustChange)
	s.endPending(ctx)
	if err := s.startSession(r, u, mustChange); err != nil {
		s.serverError(w, r, "session", err)
		return "", false
	}
	s.issueDevice(w, r, dkey, u.ID)
	if mustChange {
		return "/password", true
	}
	return "/cases", true
}

// pendingKeys are the throttle budgets the half-logged-in session's password spent.
func (s *Server) pendingKeys(r *http.Request, u casebook.User) []throttleKey {
	return s.throttleKeys(u.Email, s.clientIP(r), s.sessions.GetString(r.Context(), keyMFADevice))
}

// codeFailure spends the budgets the password spent on a wrong code, exactly as a
// wrong password does.
func (s *Server) codeFailure(ctx context.Context, keys []throttleKey) error {
	for _, k := range keys {
		if err := s.store.RecordLoginFailure(ctx, k.key, k.t.Window, k.t.delay); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) codeForm(w http.ResponseWriter, r *http.Request) {
	u, ok := s.pendingUser(w, r)
	if !ok {
		return
	}
	if f, err := s.store.SecondFactor(r.Context(), u.ID); err != nil || !f.Confirmed {
		http.Redirect(w, r, "/mfa/enrol", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "mfa_code", CodePage{Layout: Layout{Title: "Enter your code", Flash: s.sessions.PopString(r.Context(), keyFlash)}})
}

// checkCode takes a TOTP code or a recovery code. A locked account or address, a
// wrong code, a replayed one and a used recovery code all get the same page and all
// spend the throttle.
func (s *Server) checkCode(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	code := normalizeCode(r.PostFormValue("code"))
	u, ok := s.pendingUser(w, r)
	if !ok {
		return
	}
	keys := s.pendingKeys(r, u)
	locked, err := s.store.LoginLocked(ctx, keyNames(keys)...)
	if err != nil {
		s.serverError(w, r, "login throttle", err)
		return
	}
	f, err := s.store.SecondFactor(ctx, u.ID)
	if err != nil || !f.Confirmed {
		http.Redirect(w, r, "/mfa/enrol", http.StatusSeeOther)
		return
	}
	outcome, flash := "locked", ""
	if !locked {
		if outcome, flash, err = s.tryCode(ctx, u, f, code); err != nil {
			s.serverError(w, r, "second factor", err)
			return
		}
	}
	if outcome == "success_totp" || outcome == "success_recovery_code" {
		next, ok := s.completeLogin(w, r, u, outcome)
		if !ok {
			return
		}
		if flash != "" {
			s.sessions.Put(ctx, keyFlash, flash)
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if !locked {
		if err := s.codeFailure(ctx, keys); err != nil {
			s.serverError(w, r, "login throttle", err)
			return
		}
	}
	if err := s.audit(r, &u, "login", "user:"+u.Email, outcome); err != nil {
		s.serverError(w, r, "audit", err)
		return
	}
	s.render(w, r, http.StatusOK, "mfa_code", CodePage{Layout: Layout{Title: "Enter your code"}, Failed: true})
}

// tryCode checks code against f, consuming it when it is right, and returns the
// login's audit outcome and, for a recovery code, a notice for the next page.
func (s *Server) tryCode(ctx context.Context, u casebook.User, f casebook.SecondFactor, code string) (outcome, flash string, err error) {
	if !isTOTPCode(code) {
		ok, left, err := s.store.UseRecoveryCode(ctx, u.ID, recoveryHash(code))
		if err != nil || !ok {
			return "recovery_code_wrong", "", err
		}
		return "success_recovery_code", fmt.Sprintf("You logged in with a recovery code; it will not work again, and %d are left. "+
			"If your phone is lost, ask support to reset your second factor.", left), nil
	}
	secret, err := s.box.open(u.ID, f.Secret)
	if err != nil {
		return "", "", err
	}
	step, err := matchTOTP(secret, code, time.Now(), f.LastStep)
	switch {
	case errors.Is(err, errCodeReplayed):
		return "code_replayed", "", nil
	case errors.Is(err, errCodeWrong):
		return "code_wrong", "", nil
	case err != nil:
		return "", "", err
	}
	// A concurrent login may have used the same code between the read and here.
	fresh, err := s.store.UseTOTPStep(ctx, u.ID, step)
	if err != nil || !fresh {
		return "code_replayed", "", err
	}
	return "success_totp", "", nil
}

func enrolSum(stored string) string {
	sum := sha256.Sum256([]byte(stored))
	return hex.EncodeToString(sum[:])
}

// enrolment returns the user's pending enrolment's secret, starting one (a fresh
// secret) when this session has none, or when another login replaced it. It
// returns casebook.ErrSecondFactorExists once the user has a confirmed factor.
func (s *Server) enrolment(ctx context.Context, u casebook.User) (stored, secret string, err error) {
	f, err := s.store.SecondFactor(ctx, u.ID)
	switch {
	case err == nil && f.Confirmed:
		return "", "", casebook.ErrSecondFactorExists
	case err == nil && s.sessions.GetString(ctx, keyMFAEnrol) == enrolSum(f.Secret):
		secret, err := s.box.open(u.ID, f.Secret)
		return f.Secret, secret, err
	case err != nil && !errors.Is(err, casebook.ErrNoSecondFactor):
		return "", "", err
	}
	key, err := newTOTPKey(u.Email)
	if err != nil {
		return "", "", err
	}
	stored = s.box.seal(u.ID, key.Secret())
	if err := s.store.BeginSecondFactor(ctx, u.ID, stored); err != nil {
		return "", "", err
	}
	s.sessions.Put(ctx, keyMFAEnrol, enrolSum(stored))
	return stored, key.Secret(), nil
}

func (s *Server) enrolPage(secret, problem string) EnrolPage {
	return EnrolPage{Layout: Layout{Title: "Set up a second factor"}, Secret: groupSecret(secret), Problem: problem}
}

func (s *Server) enrolForm(w http.ResponseWriter, r *http.Request) {
	u, ok := s.pendingUser(w, r)
	if !ok {
		return
	}
	_, secret, err := s.enrolment(r.Context(), u)
	if errors.Is(err, casebook.ErrSecondFactorExists) {
		http.Redirect(w, r, "/login/code", http.StatusSeeOther)
		return
	}
	if err != nil {
		s.serverError(w, r, "enrol", err)
		return
	}
	s.render(w, r, http.StatusOK, "mfa_enrol", s.enrolPage(secret, ""))
}

// enrolQR serves the QR code of the session's enrolment as a PNG from the page's own
// origin, so that the CSP's img-src 'self' admits it and the secret goes to no
// third-party QR service.
func (s *Server) enrolQR(w http.ResponseWriter, r *http.Request) {
	u, ok := s.pendingUser(w, r)
	if !ok {
		return
	}
	_, secret, err := s.enrolment(r.Context(), u)
	if errors.Is(err, casebook.ErrSecondFactorExists) {
		s.notFound(w, r)
		return
	}
	if err != nil {
		s.serverError(w, r, "enrol", err)
		return
	}
	key, err := totpKey(u.Email, secret)
	if err != nil {
		s.serverError(w, r, "enrol", err)
		return
	}
	img, err := key.Image(240, 240)
	if err != nil {
		s.serverError(w, r, "enrol", err)
		return
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		s.serverError(w, r, "enrol", err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(buf.Bytes())
}

// enrol confirms the session's enrolment with a first code, issues the recovery
// codes, completes the login and shows the codes, once.
func (s *Server) enrol(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	code := r.PostFormValue("code")
	u, ok := s.pendingUser(w, r)
	if !ok {
		return
	}
	keys := s.pendingKeys(r, u)
	locked, err := s.store.LoginLocked(ctx, keyNames(keys)...)
	if err != nil {
		s.serverError(w, r, "login throttle", err)
		return
	}
	stored, secret, err := s.enrolment(ctx, u)
	if errors.Is(err, casebook.ErrSecondFactorExists) {
		http.Redirect(w, r, "/login/code", http.StatusSeeOther)
		return
	}
	if err != nil {
		s.serverError(w, r, "enrol", err)
		return
	}
	var codes []string
	confirmed := false
	if !locked {
		if codes, confirmed, err = s.confirmEnrolment(ctx, u, stored, secret, code); err != nil {
			s.serverError(w, r, "enrol", err)
			return
		}
	}
	if !confirmed {
		if !locked {
			if err := s.codeFailure(ctx, keys); err != nil {
				s.serverError(w, r, "login throttle", err)
				return
			}
		}
		outcome := "code_wrong"
		if locked {
			outcome = "locked"
		}
		if err := s.audit(r, &u, "mfa_enrol", "user:"+u.Email, outcome); err != nil {
			s.serverError(w, r, "audit", err)
			return
		}
		s.render(w, r, http.StatusUnprocessableEntity, "mfa_enrol", s.enrolPage(secret,
			"That code is not right, or there were too many attempts. Check the time on your phone, then type the code it shows now."))
		return
	}
	if err := s.audit(r, &u, "mfa_enrol", "user:"+u.Email, "success"); err != nil {
		s.serverError(w, r, "audit", err)
		return
	}
	next, ok := s.completeLogin(w, r, u, "success_enrolled")
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "mfa_recovery", RecoveryPage{
		Layout: Layout{Title: "Your recovery codes", User: &u, Restricted: true}, Codes: codes, Next: next})
}

// confirmEnrolment checks the first code against the enrolment's secret and, when it
// is right, confirms the factor with a fresh set of recovery codes, which it returns.
func (s *Server) confirmEnrolment(ctx context.Context, u casebook.User, stored, secret, code string) ([]string, bool, error) {
	step, err := matchTOTP(secret, code, time.Now(), 0)
	if errors.Is(err, errCodeWrong) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	codes := newRecoveryCodes()
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = recoveryHash(c)
	}
	ok, err := s.store.ConfirmSecondFactor(ctx, u.ID, stored, step, hashes)
	if err != nil || !ok {
		return nil, false, err
	}
	return codes, true, nil
}
