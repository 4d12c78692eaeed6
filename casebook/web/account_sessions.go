package web

import (
	"net/http"
	"strconv"
)

// sessionList shows the viewer's sessions: when and from where each began, and which
// one is this browser.
func (s *Server) sessionList(w http.ResponseWriter, r *http.Request, v viewer) {
	ctx := r.Context()
	ss, err := s.store.UserSessions(ctx, v.User.ID, s.sessions.Token(ctx))
	if err != nil {
		s.serverError(w, r, "sessions", err)
		return
	}
	s.render(w, r, http.StatusOK, "sessions", SessionsPage{
		Layout:   Layout{Title: "Your sessions", User: &v.User, Flash: s.sessions.PopString(ctx, keyFlash)},
		Sessions: ss,
	})
}

// endOtherSessions ends every session of the viewer but this one: a user who sees a
// session they do not recognise, or left one open on a shared computer, ends it here.
func (s *Server) endOtherSessions(w http.ResponseWriter, r *http.Request, v viewer) {
	ctx := r.Context()
	epoch, ended, err := s.store.RevokeSessions(ctx, v.User.ID, s.sessions.Token(ctx))
	if err != nil {
		s.serverError(w, r, "end sessions", err)
		return
	}
	s.sessions.Put(ctx, keyEpoch, epoch)
	if err := s.audit(r, &v.User, "sessions_revoke", "user:"+v.User.Email, "ended_"+strconv.Itoa(ended)); err != nil {
		s.serverError(w, r, "audit", err)
		return
	}
	msg := "Your other sessions are ended."
	if ended == 1 {
		msg = "Your other session is ended."
	}
	s.sessions.Put(ctx, keyFlash, msg)
	http.Redirect(w, r, "/account/sessions", http.StatusSeeOther)
}
