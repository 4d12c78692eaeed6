package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

// pageSize is the number of cases a list page shows.
const pageSize = 25

// tabs maps a tab to its statuses.
var tabs = map[string][]casebook.Status{
	"open":     {casebook.StatusOpen, casebook.StatusPending},
	"resolved": {casebook.StatusResolved, casebook.StatusClosed},
}

// The staff's two lists: the cases they own and every case of the support team.
const (
	viewMine = "mine"
	viewAll  = "all"
)

// maxSearch caps the searched text.
const maxSearch = 100

func (s *Server) caseList(w http.ResponseWriter, r *http.Request, v viewer) {
	ctx := r.Context()
	q := r.URL.Query()
	tab := q.Get("tab")
	if _, ok := tabs[tab]; !ok {
		tab = "open"
	}
	var after *casebook.CaseCursor
	if c, ok := parseCursor(q.Get("after")); ok {
		after = &c
	}
	org, owner := v.scope()
	f := casebook.CaseFilter{OrgID: org, OwnerID: owner, Statuses: tabs[tab], After: after, Limit: pageSize + 1}
	p := CaseListPage{
		Layout: Layout{Title: "Cases", User: &v.User, Flash: s.sessions.PopString(ctx, keyFlash)},
		Tab:    tab,
		Paged:  after != nil,
	}
	if v.User.Staff {
		p.View = viewMine
		if q.Get("view") == viewAll {
			p.View, f.OwnerID = viewAll, 0
		}
		p.Search = truncate(strings.TrimSpace(q.Get("q")), maxSearch)
		s.applySearch(&f, p.Search)
	}
	all, err := s.store.Cases(ctx, f)
	if err != nil {
		s.serverError(w, r, "case list", err)
		return
	}
	if len(all) > pageSize {
		all = all[:pageSize]
		last := all[len(all)-1]
		p.Next = formatCursor(casebook.CaseCursor{UpdatedAt: last.UpdatedAt, ID: last.ID})
	}
	p.Cases = all
	s.render(w, r, http.StatusOK, "cases", p)
}

// applySearch narrows a staff list to what was typed: a case reference or a bare
// number finds that case (in any tab), anything else the cases whose subject or
// requester holds it.
func (s *Server) applySearch(f *casebook.CaseFilter, text string) {
	if text == "" {
		return
	}
	if n, err := s.opt.Refs.Parse(text); err == nil {
		f.Number, f.Statuses = n, nil
		return
	}
	f.Text = text
}

// formatCursor writes a cursor as "MICROSECONDS.ID": PostgreSQL keeps microseconds.
func formatCursor(c casebook.CaseCursor) string {
	return fmt.Sprintf("%d.%d", c.UpdatedAt.UnixMicro(), c.ID)
}

// parseCursor reads a cursor; a missing or malformed one means the first page.
func parseCursor(s string) (casebook.CaseCursor, bool) {
	us, id, ok := strings.Cut(s, ".")
	if !ok {
		return casebook.CaseCursor{}, false
	}
	u, err1 := strconv.ParseInt(us, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil || n <= 0 {
		return casebook.CaseCursor{}, false
	}
	return casebook.CaseCursor{UpdatedAt: time.UnixMicro(u), ID: n}, true
}
