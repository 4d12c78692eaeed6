package web

import (
	"errors"
	"net/http"

	"github.com/casebookhq/casebook/casebook"
)

// caseInScope finds the case named in the path among the viewer's. A case of another
// org, or none at all, is 404 with an audit row: the answer must not tell which.
func (s *Server) caseInScope(w http.ResponseWriter, r *http.Request, v viewer, action string) (casebook.Case, bool) {
	raw := r.PathValue("ref")
	number, err := s.opt.Refs.Parse(raw)
	var c casebook.Case
	switch {
	case err != nil:
	case v.User.Staff:
		// Staff see every case of the support team (there is one).
		c, err = s.store.CaseByNumber(r.Context(), number)
	default:
		org, owner := v.scope()
		c, err = s.store.CaseInScope(r.Context(), number, org, owner)
	}
	if errors.Is(err, casebook.ErrCaseNotFound) || errors.Is(err, casebook.ErrInvalidInput) {
		object := truncate(raw, 64)
		if number != 0 {
			object = s.opt.Refs.Format(number)
		}
		if aerr := s.audit(r, &v.User, action, object, "denied"); aerr != nil {
			s.serverError(w, r, "audit", aerr)
			return c, false
		}
		s.renderError(w, r, http.StatusNotFound, "There is no such case among yours.")
		return c, false
	}
	if err != nil {
		s.serverError(w, r, "case", err)
		return c, false
	}
	return c, true
}

func (s *Server) casePage(w http.ResponseWriter, r *http.Request, v viewer) {
	c, ok := s.caseInScope(w, r, v, "case_view")
	if !ok {
		return
	}
	if err := s.audit(r, &v.User, "case_view", s.opt.Refs.Format(c.Number), "success"); err != nil {
		s.serverError(w, r, "audit", err)
		return
	}
	p, err := s.casePageData(r, v, c)
	if err != nil {
		s.serverError(w, r, "case page", err)
		return
	}
	p.Flash = s.sessions.PopString(r.Context(), keyFlash)
	s.render(w, r, http.StatusOK, "case", p)
}

func (s *Server) casePageData(r *http.Request, v viewer, c casebook.Case) (CasePage, error) {
	tl, err := s.store.Timeline(r.Context(), c.ID)
	if err != nil {
		return CasePage{}, err
	}
	var atts []casebook.Attachment
	for _, e := range tl {
		atts = append(atts, e.Attachments...)
	}
	var owners []casebook.User
	if v.User.Staff {
		if owners, err = s.store.StaffMembers(r.Context()); err != nil {
			return CasePage{}, err
		}
	}
	return CasePage{
		Owners:      owners,
		Layout:      Layout{Title: s.opt.Refs.Format(c.Number) + " " + c.Subject, User: &v.User},
		Case:        c,
		Timeline:    tl,
		Attachments: atts,
		CanUpload:   c.Status != casebook.StatusClosed,
		MaxFiles:    s.opt.MaxFiles,
		MaxFileSize: s.opt.MaxFileSize,
	}, nil
}
