package web

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

// quarantinePageSize is the number of quarantined mails a queue page shows.
const quarantinePageSize = 50

// QueueEntry is one quarantined mail in the queue, with its sender verdict.
type QueueEntry struct {
	casebook.QuarantineItem
	Verdict string
	Age     string
}

// QuarantinePage is one page of the quarantine queue, oldest first.
type QuarantinePage struct {
	Layout
	Items []QueueEntry
	// Next is the id after which the following page starts, 0 on the last page.
	Next  int64
	Paged bool
}

// QuarantineItemPage is one quarantined mail: why, from whom, its text and files, and
// the release and drop forms.
type QuarantineItemPage struct {
	Layout
	Item    QueueEntry
	Files   []casebook.QuarantinedFile
	Pending bool
	// CaseRef prefills the release form with the case the mail named.
	CaseRef string
	Problem string
}

// verdictText says what the sender check found, from the verdict the mail processor
// kept in the row's meta ("sender_auth", "sender_auth_method", "sender_auth_domain").
func verdictText(meta map[string]string) string {
	r, ok := meta["sender_auth"]
	if !ok {
		return "not checked"
	}
	out := r
	if m := meta["sender_auth_method"]; m != "" {
		out += " (" + m + ")"
	}
	if d := meta["sender_auth_domain"]; d != "" {
		out += " for " + d
	}
	return out
}

// age says how long a mail has waited, in the largest whole unit.
func age(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func queueEntry(now time.Time, it casebook.QuarantineItem) QueueEntry {
	return QueueEntry{QuarantineItem: it, Verdict: verdictText(it.Meta), Age: age(now, it.CreatedAt)}
}

func (s *Server) quarantineList(w http.ResponseWriter, r *http.Request, v viewer) {
	ctx := r.Context()
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	items, err := s.store.Quarantine(ctx, casebook.QuarantineFilter{After: max(after, 0), Limit: quarantinePageSize + 1})
	if err != nil {
		s.serverError(w, r, "quarantine", err)
		return
	}
	p := QuarantinePage{Layout: Layout{Title: "Quarantine", User: &v.User, Flash: s.sessions.PopString(ctx, keyFlash)}, Paged: after > 0}
	if len(items) > quarantinePageSize {
		items = items[:quarantinePageSize]
		p.Next = items[len(items)-1].ID
	}
	now := time.Now()
	for _, it := range items {
		p.Items = append(p.Items, queueEntry(now, it))
	}
	s.render(w, r, http.StatusOK, "quarantine", p)
}

// quarantineItem loads the quarantined mail named in the path; an unknown id is 404.
func (s *Server) quarantineItem(w http.ResponseWriter, r *http.Request, v viewer, action string) (casebook.QuarantineItem, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var it casebook.QuarantineItem
	if err != nil || id <= 0 {
		err = casebook.ErrNotFound
	} else {
		it, err = s.store.QuarantineByID(r.Context(), id)
	}
	if errors.Is(err, casebook.ErrNotFound) {
		if aerr := s.audit(r, &v.User, action, "quarantine:"+truncate(r.PathValue("id"), 32), "denied"); aerr != nil {
			s.serverError(w, r, "audit", aerr)
			return it, false
		}
		s.renderError(w, r, http.StatusNotFound, "There is no such quarantined mail.")
		return it, false
	}
	if err != nil {
		s.serverError(w, r, "quarantine", err)
		return it, false
	}
	return it, true
}

func (s *Server) quarantineView(w http.ResponseWriter, r *http.Request, v viewer) {
	it, ok := s.quarantineItem(w, r, v, "quarantine_view")
	if !ok {
		return
	}
	if err := s.audit(r, &v.User, "quarantine_view", fmt.Sprintf("quarantine:%d", it.ID), "success"); err != nil {
		s.serverError(w, r, "audit", err)
		return
	}
	p, err := s.quarantinePageData(r, v, it)
	if err != nil {
		s.serverError(w, r, "quarantine", err)
		return
	}
	p.Flash = s.sessions.PopString(r.Context(), keyFlash)
	s.render(w, r, http.StatusOK, "quarantine_item", p)
}

func (s *Server) quarantinePageData(r *http.Request, v viewer, it casebook.QuarantineItem) (QuarantineItemPage, error) {
	p := QuarantineItemPage{
		Layout:  Layout{Title: fmt.Sprintf("Quarantined mail %d", it.ID), User: &v.User},
		Item:    queueEntry(time.Now(), it),
		Pending: it.Status == casebook.QuarantinePending,
	}
	if it.CaseNumber != nil {
		p.CaseRef = s.opt.Refs.Format(*it.CaseNumber)
	}
	if it.RawBlob != "" && s.qfiles != nil {
		files, err := s.qfiles.Files(r.Context(), it.RawBlob)
		if err != nil {
			return p, err
		}
		p.Files = files
	}
	return p, nil
}

// quarantineFile serves one attachment of a quarantined mail as a download that no
// browser renders, as attachments of cases are; nobody has vouched for it yet, so its
// type is never trusted.
func (s *Server) quarantineFile(w http.ResponseWriter, r *http.Request, v viewer) {
	it, ok := s.quarantineItem(w, r, v, "quarantine_download")
	if !ok {
		return
	}
	index, err := strconv.Atoi(r.PathValue("n"))
	object := fmt.Sprintf("quarantine:%d/file/%s", it.ID, truncate(r.PathValue("n"), 16))
	if err != nil || index < 0 || it.RawBlob == "" || s.qfiles == nil {
		err = casebook.ErrNotFound
	}
	if err == nil {
		if err = s.audit(r, &v.User, "quarantine_download", object, "success"); err != nil {
			s.serverError(w, r, "audit", err)
			return
		}
		err = s.qfiles.OpenFile(r.Context(), it.RawBlob, index, func(f casebook.QuarantinedFile, body io.Reader) error {
			fileHeaders(w.Header(), casebook.Attachment{Filename: casebook.SanitizeFilename(f.Filename), ContentType: "application/octet-stream"})
			_, err := io.Copy(w, body)
			return err
		})
	}
	if errors.Is(err, casebook.ErrNotFound) {
		s.renderError(w, r, http.StatusNotFound, "This mail has no such file.")
		return
	}
	if err != nil {
		// Headers may be out already: the log says what broke; the client sees a
		// transfer cut short.
		s.log.ErrorContext(r.Context(), "quarantined file failed", "quarantine", it.ID, slog.Any("error", err))
		panic(http.ErrAbortHandler)
	}
}

// quarantineRefused shows the mail again with what went wrong; it stays as it was.
func (s *Server) quarantineRefused(w http.ResponseWriter, r *http.Request, v viewer, id int64, err error) {
	status, msg, ok := s.deskProblem(err)
	if !ok {
		s.serverError(w, r, "quarantine", err)
		return
	}
	it, lerr := s.store.QuarantineByID(r.Context(), id)
	if lerr != nil {
		s.serverError(w, r, "quarantine", lerr)
		return
	}
	p, perr := s.quarantinePageData(r, v, it)
	if perr != nil {
		s.serverError(w, r, "quarantine", perr)
		return
	}
	if c := strings.TrimSpace(r.PostFormValue("case")); c != "" {
		p.CaseRef = truncate(c, 32)
	}
	p.Problem = msg
	s.render(w, r, status, "quarantine_item", p)
}

func (s *Server) quarantineRelease(w http.ResponseWriter, r *http.Request, v viewer) {
	it, ok := s.quarantineItem(w, r, v, "quarantine_release")
	if !ok {
		return
	}
	number, err := s.opt.Refs.Parse(r.PostFormValue("case"))
	if err != nil {
		s.quarantineRefused(w, r, v, it.ID, fmt.Errorf("%w: name the case as %s", casebook.ErrInvalidInput, s.opt.Refs.Format(123)))
		return
	}
	out, err := s.desk.ReleaseQuarantine(r.Context(), s.actor(r, v), it.ID, number)
	if err != nil {
		s.quarantineRefused(w, r, v, it.ID, err)
		return
	}
	msg := fmt.Sprintf("The mail was added to %s.", out.Case)
	if out.Result == casebook.ResultDuplicate {
		msg = fmt.Sprintf("The mail was already on %s; it is now out of the queue.", out.Case)
	}
	s.sessions.Put(r.Context(), keyFlash, msg)
	http.Redirect(w, r, "/quarantine", http.StatusSeeOther)
}

func (s *Server) quarantineDrop(w http.ResponseWriter, r *http.Request, v viewer) {
	it, ok := s.quarantineItem(w, r, v, "quarantine_drop")
	if !ok {
		return
	}
	if err := s.desk.DropQuarantine(r.Context(), s.actor(r, v), it.ID); err != nil {
		s.quarantineRefused(w, r, v, it.ID, err)
		return
	}
	s.sessions.Put(r.Context(), keyFlash, fmt.Sprintf("Quarantined mail %d was dropped.", it.ID))
	http.Redirect(w, r, "/quarantine", http.StatusSeeOther)
}
