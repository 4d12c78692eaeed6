package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/ingest/mail"
)

// Match says which case a mail names and how.
type Match struct {
	CaseNumber int64
	// By is MatchedByToken, MatchedByThread or MatchedBySubject.
	By string
	// Proven is set when the sender must have received our mail for the case (rules 1
	// and 2), which lets any contact of the case's organisation write.
	Proven bool
}

// Matcher finds a mail's case by the rules, in order:
//
//  1. a valid reply token in the plus-address of ReplyAddress in To, Cc, Delivered-To
//     or X-Original-To;
//  2. In-Reply-To or References naming the Message-ID of mail casebook sent for the
//     case (our ids carry 130 random bits, so knowing a case number does not help);
//  3. a case reference in the subject, as casebook.RefFormat finds it.
//
// The first rule that names a case decides. A rule that names two different cases is
// casebook.ErrAmbiguousCase; none naming any is casebook.ErrNoCaseRef; a reply token
// that is genuine but expired is casebook.ErrTokenExpired.
type Matcher struct {
	ReplyAddress string
	Tokens       *casebook.TokenSigner
	Refs         casebook.RefFormat
	// Threads returns the cases whose mail carried one of ids (with angle brackets),
	// in the order given.
	Threads func(ctx context.Context, ids []string) ([]int64, error)
}

// Match applies the rules to msg. Errors other than ErrAmbiguousCase and ErrNoCaseRef
// come from Threads.
func (m *Matcher) Match(ctx context.Context, msg *mail.Message) (Match, error) {
	cases, expired := m.tokenCases(msg)
	switch {
	case len(cases) == 1:
		return Match{CaseNumber: cases[0], By: MatchedByToken, Proven: true}, nil
	case len(cases) > 1:
		return Match{By: MatchedByToken}, fmt.Errorf("reply tokens: %w: %s and %s", casebook.ErrAmbiguousCase,
			m.Refs.Format(cases[0]), m.Refs.Format(cases[1]))
	case len(expired) > 0:
		// A genuine but expired token is said so, never passed on to the subject rule,
		// which would ask more of the sender and hide why the reply did not land.
		return Match{CaseNumber: expired[0], By: MatchedByToken}, fmt.Errorf("reply token for %s: %w",
			m.Refs.Format(expired[0]), casebook.ErrTokenExpired)
	}
	if m.Threads != nil {
		// In-Reply-To names the parent; References lists the thread oldest first
		// (RFC 5322 section 3.6.4), so the last of ours is the nearest.
		for _, ids := range [][]string{msg.InReplyTo, msg.References} {
			if len(ids) == 0 {
				continue
			}
			cases, err := m.Threads(ctx, bracketed(ids))
			if err != nil {
				return Match{}, err
			}
			if len(cases) > 0 {
				return Match{CaseNumber: cases[len(cases)-1], By: MatchedByThread, Proven: true}, nil
			}
		}
	}
	n, err := m.Refs.Find(msg.Subject)
	if err != nil {
		return Match{By: MatchedBySubject}, fmt.Errorf("subject: %w", err)
	}
	return Match{CaseNumber: n, By: MatchedBySubject}, nil
}

// tokenCases returns the distinct cases named by valid tokens, and by genuine tokens
// past their expiry. An invalid token (a typo, a forgery, an old key) is skipped: it
// proves nothing, and the other rules may still find the case.
func (m *Matcher) tokenCases(msg *mail.Message) (cases, expired []int64) {
	if m.Tokens == nil || m.ReplyAddress == "" {
		return nil, nil
	}
	for _, list := range [][]string{msg.To, msg.Cc, msg.DeliveredTo, msg.XOriginalTo} {
		for _, addr := range list {
			tok := casebook.TokenFromAddress(m.ReplyAddress, addr)
			if tok == "" {
				continue
			}
			t, err := m.Tokens.Verify(tok)
			switch {
			case errors.Is(err, casebook.ErrTokenExpired):
				expired = append(expired, t.CaseNumber)
			case err != nil || slices.Contains(cases, t.CaseNumber):
			default:
				cases = append(cases, t.CaseNumber)
			}
		}
	}
	return cases, expired
}

// bracketed writes ids as the outbox keeps them, "<id>"; blank ids are left out so
// they can never match.
func bracketed(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" {
			out = append(out, "<"+id+">")
		}
	}
	return out
}
