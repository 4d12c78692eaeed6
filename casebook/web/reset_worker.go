package web

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

// resetPoll is how often the worker looks for requests queued by other instances (or
// left by a crash); its own arrive at once through Server.resets.
const resetPoll = 5 * time.Second

// resetLoop handles queued "Forgot your password?" requests until ctx ends.
func (s *Server) resetLoop(ctx context.Context) {
	t := time.NewTicker(resetPoll)
	defer t.Stop()
	for {
		if _, err := s.ProcessResetRequests(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("cannot handle password reset requests", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-s.resets:
		case <-t.C:
		}
	}
}

// ProcessResetRequests handles every queued "Forgot your password?" request: it looks
// the address up and, for an enabled account within its hourly cap, issues a
// temporary password with its mail; each request gets its audit row. Serve runs it in
// the background; it returns how many requests it handled.
func (s *Server) ProcessResetRequests(ctx context.Context) (int, error) {
	n := 0
	for {
		found, err := s.store.NextResetRequest(ctx, func(email, ip, userAgent string) error {
			return s.handleResetRequest(ctx, email, ip, userAgent)
		})
		if err != nil || !found {
			return n, err
		}
		n++
	}
}

func (s *Server) handleResetRequest(ctx context.Context, email, ip, userAgent string) error {
	e := casebook.AuditEntry{Action: "reset_request", Object: "user:" + truncate(strings.ToLower(email), 320), IP: ip, UserAgent: userAgent}
	u, err := s.store.UserByEmail(ctx, email)
	switch {
	case errors.Is(err, casebook.ErrUserNotFound):
		e.Outcome = "unknown_user"
	case err != nil:
		return err
	case u.Disabled:
		e.UserID, e.OrgID, e.Outcome = &u.ID, u.OrgID, "disabled"
	default:
		e.UserID, e.OrgID = &u.ID, u.OrgID
		_, issued, err := IssueTemporaryPassword(ctx, s.store, u, TemporaryPassword{
			Reason: casebook.ReasonReset, TTL: s.opt.ResetTTL, PerHour: s.opt.ResetsPerHour, MessageIDDomain: s.opt.MessageIDDomain,
		})
		if err != nil {
			return err
		}
		e.Outcome = "issued"
		if !issued {
			e.Outcome = "rate_limited"
		}
	}
	return s.audits.append(e)
}
