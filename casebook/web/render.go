package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

// Layout is the part of every page the base layout shows.
type Layout struct {
	Title string
	// User is the logged-in user, nil on the pages before login.
	User *casebook.User
	// Restricted hides the navigation while a temporary password must be replaced.
	Restricted bool
	// Flash is a one-time notice carried over a redirect.
	Flash string
	// QuarantinePending is the staff header's count of mail waiting in quarantine.
	QuarantinePending int64
}

// LoginPage is the login form.
type LoginPage struct {
	Layout
	Email string
	// Failed says the last attempt was refused, without saying why: the answer is the
	// same for an unknown user, a wrong password and a locked account.
	Failed bool
}

// ForgotPage asks for the account whose password was forgotten.
type ForgotPage struct {
	Layout
	// Sent shows the one answer every request gets.
	Sent bool
}

// PasswordPage sets a new password: forced after a temporary one, or a change.
type PasswordPage struct {
	Layout
	Forced  bool
	Problem string
	Min     int
}

// CaseListPage is one page of a tab of cases.
type CaseListPage struct {
	Layout
	Tab string
	// View is the staff's list, viewMine or viewAll; empty for customers.
	View string
	// Search is what staff typed into the search field.
	Search string
	Cases  []casebook.Case
	// Next is the cursor of the following page, empty on the last one.
	Next string
	// Paged is set when this is not the first page.
	Paged bool
}

// CasePage is a case with its timeline and attachments.
type CasePage struct {
	Layout
	Case        casebook.Case
	Timeline    []casebook.TimelineEntry
	Attachments []casebook.Attachment
	CanUpload   bool
	MaxFiles    int
	MaxFileSize int64
	Problem     string
	// Owners are the staff a case may be handed to, shown to staff only.
	Owners []casebook.User
}

// SessionsPage lists the viewer's sessions, with a button to end the others.
type SessionsPage struct {
	Layout
	Sessions []casebook.Session
}

// ErrorPage explains a refusal or a failure.
type ErrorPage struct {
	Layout
	Status  int
	Message string
}

// pages holds the parsed templates, one per page, each with the base layout.
type pages struct {
	byName map[string]*template.Template
}

// pageNames are the page templates under pages/ besides base.html.
var pageNames = []string{"login", "forgot", "password", "cases", "case", "error", "mfa_code", "mfa_enrol", "mfa_recovery", "sessions",
	"quarantine", "quarantine_item"}

func parsePages(fsys fs.FS, refs casebook.RefFormat) (*pages, error) {
	funcs := template.FuncMap{
		"ref":     refs.Format,
		"bytes":   casebook.FormatSize,
		"when":    func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") },
		"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"channel": channelLabel,
		"lines":   func(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") },
	}
	base, err := template.New("base.html").Funcs(funcs).ParseFS(fsys, "pages/base.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(fsys, "pages/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: templates: %w", err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// render writes a page. It renders into a buffer first, so that a template error
// becomes a clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	data = s.withStaffHeader(r, data)
	var buf bytes.Buffer
	if err := s.pages.byName[name].ExecuteTemplate(&buf, "base", data); err != nil {
		s.log.ErrorContext(r.Context(), "cannot render page", "page", name, slog.Any("error", err))
		http.Error(w, "Something went wrong on our side.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "error", ErrorPage{Layout: Layout{Title: http.StatusText(status)}, Status: status, Message: msg})
}

func channelLabel(s casebook.Source) string {
	switch s {
	case casebook.SourceEmail:
		return "Email"
	case casebook.SourceSlack:
		return "Slack"
	case casebook.SourceDiscord:
		return "Discord"
	case casebook.SourceWeb:
		return "Web page"
	case casebook.SourceSystem:
		return "Support team"
	}
	return string(s)
}

// withStaffHeader fills the quarantine count of a staff member's page header. Every
// page type embeds Layout; the count is one index-only query, made only for staff.
func (s *Server) withStaffHeader(r *http.Request, data any) any {
	v := reflect.ValueOf(data)
	if v.Kind() != reflect.Struct {
		return data
	}
	f := v.FieldByName("Layout")
	if !f.IsValid() {
		return data
	}
	l, ok := f.Interface().(Layout)
	if !ok || l.User == nil || !l.User.Staff || l.Restricted {
		return data
	}
	n, err := s.store.PendingQuarantine(r.Context())
	if err != nil {
		// The header is not worth failing the page for.
		s.log.WarnContext(r.Context(), "cannot count the quarantine", slog.Any("error", err))
		return data
	}
	cp := reflect.New(v.Type()).Elem()
	cp.Set(v)
	cp.FieldByName("Layout").FieldByName("QuarantinePending").SetInt(n)
	return cp.Interface()
}
