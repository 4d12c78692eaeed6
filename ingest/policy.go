package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/ingest/mail"
	"github.com/casebookhq/casebook/ingest/senderauth"
)

// SenderAuth says how much the subject rule asks of the sender verdict.
type SenderAuth string

// The sender-auth settings.
const (
	// Strict: the subject rule needs a pass. A case number is easy to learn (they
	// are sequential), so without proof of the sender it opens every case.
	Strict SenderAuth = "strict"
	// Lenient: the subject rule also takes none, for customers whose mail carries
	// no usable DKIM or DMARC yet. fail is refused all the same.
	Lenient SenderAuth = "lenient"
)

// ParseSenderAuth checks a --sender-auth value.
func ParseSenderAuth(s string) (SenderAuth, error) {
	switch a := SenderAuth(s); a {
	case Strict, Lenient:
		return a, nil
	}
	return "", fmt.Errorf("%w: sender auth %q is neither strict nor lenient", casebook.ErrInvalidInput, s)
}

// errStaffSender marks a refusal because the author is staff.
var errStaffSender = errors.New("staff author")

// checkSender applies the policy to a mail matched to a case (a fail is refused
// before): staff need a pass on every rule, since staff may write to every case and
// have the web page and `casebook case reply` to do it; the subject rule needs a pass
// (or none when lenient); the reply-token and thread rules prove the sender received
// our mail, so none will do.
func (p *MailProcessor) checkSender(ctx context.Context, msg *mail.Message, m Match, v senderauth.Verdict) error {
	if v.Result == senderauth.Pass {
		return nil
	}
	u, err := p.st.UserByIdentity(ctx, casebook.IdentityEmail, msg.From.Address)
	switch {
	case err == nil && u.Staff:
		return fmt.Errorf("%w: %w", ErrSenderNotVerified, errStaffSender)
	case err != nil && !errors.Is(err, casebook.ErrUserNotFound):
		return fmt.Errorf("sender: %w", err)
	}
	if m.By == MatchedBySubject && !(v.Result == senderauth.None && p.opt.SenderAuth == Lenient) {
		return ErrSenderNotVerified
	}
	return nil
}

// beginVerdict starts the mail's sender verdict; none when no verifier is configured.
func (p *MailProcessor) beginVerdict(ctx context.Context, raw io.ReadSeeker) *senderauth.Check {
	if p.opt.Verifier == nil {
		return senderauth.Decided(senderauth.Verdict{Result: senderauth.None})
	}
	return p.opt.Verifier.Begin(ctx, raw)
}
