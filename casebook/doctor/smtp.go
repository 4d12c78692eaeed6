package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/emersion/go-smtp"
)

// SMTPProbe opens a submission session the way the outbox worker does (connect, TLS,
// EHLO, AUTH) and quits without offering a mail; outbox.Dialer is one. Errors from a
// step of the session carry Stage() ("tls", "starttls", "ehlo", "auth").
type SMTPProbe interface {
	Probe(ctx context.Context) error
	// String names the server without its password.
	String() string
}

// SMTP checks the submission server casebook sends through and says what to fix.
func SMTP(p SMTPProbe) Check {
	return Check{Name: "smtp", Run: func(ctx context.Context) (string, error) {
		err := p.Probe(ctx)
		if err == nil {
			return fmt.Sprintf("reached %s, secured and logged in as configured; no mail sent", p), nil
		}
		return "", fmt.Errorf("%s: %s (%w)", p, smtpHint(err), err)
	}}
}

// smtpHint turns the step that failed into what to check.
func smtpHint(err error) string {
	var staged interface{ Stage() string }
	var se *smtp.SMTPError
	var opErr *net.OpError
	stage := ""
	if errors.As(err, &staged) {
		stage = staged.Stage()
	}
	switch {
	case stage == "token":
		return "could not get an OAuth access token"
	case stage == "auth" && errors.As(err, &se):
		return "the server refused the login: check the user and password (with OAuth: that the app may send as this mailbox, and SMTP AUTH is enabled for it)"
	case stage == "auth":
		return "no usable login: use the submission port with TLS, where AUTH PLAIN or LOGIN is offered"
	case stage == "tls":
		return "TLS with the server failed: is it the implicit-TLS port (465), and is its certificate valid for the host?"
	case stage == "starttls":
		return "STARTTLS with the server failed: does it offer STARTTLS (port 587), and is its certificate valid for the host?"
	case stage == "ehlo":
		return "the server did not accept EHLO"
	case errors.As(err, &opErr):
		return "cannot connect: is the host and port right, and open from here?"
	}
	return "the session failed"
}
