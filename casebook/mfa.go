package casebook

import "errors"

// ErrNoSecondFactor says a user has no TOTP factor, or none confirmed.
var ErrNoSecondFactor = errors.New("no second factor")

// SecondFactor is a user's TOTP factor (RFC 6238) as stored.
type SecondFactor struct {
	UserID int64
	// Secret is the shared secret in the form the web package seals it; storage
	// treats it as opaque text.
	Secret string
	// Confirmed is set once the user has typed a code from their authenticator.
	Confirmed bool
	// LastStep is the newest time step a code was accepted for: no code of that step
	// or an earlier one is accepted again.
	LastStep int64
}

// ErrSecondFactorExists refuses to start an enrolment over a confirmed factor: a lost
// phone is reset by staff (`casebook user mfa-reset`), never from the login page.
var ErrSecondFactorExists = errors.New("a confirmed second factor exists")
