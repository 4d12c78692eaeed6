package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/casebookhq/casebook/casebook"
)

// Desk is the staff's use cases (casebook.Desk): the page parses the form, calls one
// and shows the outcome.
type Desk interface {
	Reply(ctx context.Context, by casebook.Actor, number int64, body string, files casebook.FileSeq) (casebook.Reply, error)
	SetStatus(ctx context.Context, by casebook.Actor, number int64, change casebook.StatusChange) (casebook.Case, error)
	Reassign(ctx context.Context, by casebook.Actor, number, ownerID int64) (casebook.Case, error)
	ReleaseQuarantine(ctx context.Context, by casebook.Actor, id, caseNumber int64) (casebook.Release, error)
	DropQuarantine(ctx context.Context, by casebook.Actor, id int64) error
}

// QuarantineFiles reads the attachments of quarantined mail back from its raw copy
// (ingest.QuarantinedFiles: the mail channel parses MIME, the page does not).
type QuarantineFiles interface {
	Files(ctx context.Context, rawBlob string) ([]casebook.QuarantinedFile, error)
	OpenFile(ctx context.Context, rawBlob string, index int, fn func(f casebook.QuarantinedFile, body io.Reader) error) error
}

// maxReplyBytes caps a reply's text.
const maxReplyBytes = 64 << 10

// staffOnly admits staff. Anyone else gets the page every unknown address gets, and
// an audit row: a customer trying staff addresses is worth knowing about. Staff
// reached this point only through the second factor when the policy asks for one
// (authed admits no half-logged-in session).
func (s *Server) staffOnly(h authedHandler) http.HandlerFunc {
	return s.authed(func(w http.ResponseWriter, r *http.Request, v viewer) {
		if !v.User.Staff {
			if err := s.audit(r, &v.User, "staff_page", truncate(r.Method+" "+r.URL.Path, 128), "denied"); err != nil {
				s.serverError(w, r, "audit", err)
				return
			}
			s.notFound(w, r)
			return
		}
		h(w, r, v)
	})
}

// staffAction admits staff to a decision, which needs the Desk.
func (s *Server) staffAction(h authedHandler) http.HandlerFunc {
	return s.staffOnly(func(w http.ResponseWriter, r *http.Request, v viewer) {
		if s.desk == nil {
			s.renderError(w, r, http.StatusServiceUnavailable, "Staff decisions are not available on this server.")
			return
		}
		h(w, r, v)
	})
}

// actor is the staff member of a request, for the audit rows the use cases write.
func (s *Server) actor(r *http.Request, v viewer) casebook.Actor {
	return casebook.Actor{User: &v.User, IP: s.clientIP(r), UserAgent: truncate(r.UserAgent(), 256)}
}

// deskProblem turns a use case's refusal into what the staff member reads and the
// status it is answered with. ok is false for a failure that is ours (500).
func (s *Server) deskProblem(err error) (status int, msg string, ok bool) {
	switch {
	case errors.Is(err, casebook.ErrEmptyReply):
		return http.StatusBadRequest, "Write a reply or attach a file: an empty reply is not sent.", true
	case errors.Is(err, casebook.ErrAlreadyResolved):
		return http.StatusConflict, "A colleague has dealt with this mail already (" + unwrapLast(err) + "). Nothing was changed.", true
	case errors.Is(err, casebook.ErrCaseClosed):
		return http.StatusConflict, "That case is closed: reopen it first, or choose another case. Nothing was changed.", true
	case errors.Is(err, casebook.ErrCaseNotFound):
		return http.StatusUnprocessableEntity, "There is no such case. Check the number. Nothing was changed.", true
	case errors.Is(err, casebook.ErrUserDisabled):
		return http.StatusConflict, "The requester's account is disabled, so they could not read or answer a reply. Enable the account first (casebook user enable). Nothing was sent.", true
	case errors.Is(err, casebook.ErrTooLarge), errors.Is(err, casebook.ErrTooManyFiles):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("Attach at most %d files of at most %s each. Nothing was sent.", s.opt.MaxFiles, casebook.FormatSize(s.opt.MaxFileSize)), true
	case errors.Is(err, casebook.ErrFileTypeNotAllowed):
		return http.StatusUnsupportedMediaType, "One of the files is of a kind we do not accept. Nothing was sent.", true
	case errors.Is(err, casebook.ErrInvalidInput):
		return http.StatusBadRequest, "That cannot be done: " + unwrapLast(err) + ".", true
	}
	return http.StatusInternalServerError, "", false
}

// unwrapLast is the innermost detail of a use case's error, the part written for a
// person ("the case is closed", "quarantine 3 was released by Sue").
func unwrapLast(err error) string {
	msg := err.Error()
	return msg[strings.LastIndex(msg, ": ")+2:]
}

// caseRefused shows the case page again with what went wrong.
func (s *Server) caseRefused(w http.ResponseWriter, r *http.Request, v viewer, c casebook.Case, what string, err error) {
	status, msg, ok := s.deskProblem(err)
	if !ok {
		s.serverError(w, r, what, err)
		return
	}
	s.log.InfoContext(r.Context(), "staff action refused", "what", what, "case", s.opt.Refs.Format(c.Number), "status", status)
	p, perr := s.casePageData(r, v, c)
	if perr != nil {
		s.serverError(w, r, "case page", perr)
		return
	}
	p.Problem = msg
	s.render(w, r, status, "case", p)
}

// reply posts a staff reply: its words first, then any files, streamed (multipart).
func (s *Server) reply(w http.ResponseWriter, r *http.Request, v viewer) {
	c, ok := s.caseInScope(w, r, v, "case_reply")
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, int64(s.opt.MaxFiles)*s.opt.MaxFileSize+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		s.caseRefused(w, r, v, c, "reply", fmt.Errorf("%w: %v", casebook.ErrInvalidInput, err))
		return
	}
	// The form puts the text before the file input, so browsers send it first.
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "body" {
		s.caseRefused(w, r, v, c, "reply", fmt.Errorf("%w: the reply's text must come first", casebook.ErrInvalidInput))
		return
	}
	text, err := io.ReadAll(io.LimitReader(part, maxReplyBytes+1))
	if err != nil || len(text) > maxReplyBytes {
		s.caseRefused(w, r, v, c, "reply", fmt.Errorf("%w: the reply is longer than %d bytes", casebook.ErrInvalidInput, maxReplyBytes))
		return
	}
	out, err := s.desk.Reply(r.Context(), s.actor(r, v), c.Number, string(text), s.multipartFiles(mr, false))
	if err != nil {
		s.caseRefused(w, r, v, c, "reply", err)
		return
	}
	s.sessions.Put(r.Context(), keyFlash, fmt.Sprintf("Reply sent to %s.", out.To))
	http.Redirect(w, r, "/cases/"+out.Case, http.StatusSeeOther)
}

// setStatus resolves, closes or reopens a case.
func (s *Server) setStatus(w http.ResponseWriter, r *http.Request, v viewer) {
	c, ok := s.caseInScope(w, r, v, "case_status")
	if !ok {
		return
	}
	change, err := casebook.ParseStatusChange(r.PostFormValue("change"))
	if err == nil {
		c, err = s.desk.SetStatus(r.Context(), s.actor(r, v), c.Number, change)
	}
	if err != nil {
		s.caseRefused(w, r, v, c, "status", err)
		return
	}
	s.sessions.Put(r.Context(), keyFlash, fmt.Sprintf("The case is %s.", c.Status))
	http.Redirect(w, r, "/cases/"+s.opt.Refs.Format(c.Number), http.StatusSeeOther)
}

// reassign hands a case to another staff member.
func (s *Server) reassign(w http.ResponseWriter, r *http.Request, v viewer) {
	c, ok := s.caseInScope(w, r, v, "case_reassign")
	if !ok {
		return
	}
	owner, err := strconv.ParseInt(r.PostFormValue("owner"), 10, 64)
	if err != nil || owner <= 0 {
		err = fmt.Errorf("%w: choose a staff member", casebook.ErrInvalidInput)
	} else {
		c, err = s.desk.Reassign(r.Context(), s.actor(r, v), c.Number, owner)
	}
	if errors.Is(err, casebook.ErrUserNotFound) {
		err = fmt.Errorf("%w: no such staff member", casebook.ErrInvalidInput)
	}
	if err != nil {
		s.caseRefused(w, r, v, c, "reassign", err)
		return
	}
	name := c.OwnerName
	if name == "" {
		name = c.Owner
	}
	s.sessions.Put(r.Context(), keyFlash, "The case is now "+name+"'s.")
	http.Redirect(w, r, "/cases/"+s.opt.Refs.Format(c.Number), http.StatusSeeOther)
}
