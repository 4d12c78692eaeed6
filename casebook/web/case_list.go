package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"casebook/casebook"
)

// pageSize is the number of cases a list page shows.
const pageSize = 25

// tabs maps a tab to its statuses.
var tabs = map[string][]casebook.Status{
	"open":     {casebook.StatusOpen, casebook.StatusPending},
	"resolved": {casebook.StatusResolved, casebook.StatusClosed},
}

func (s *Server) caseList(w http.ResponseWriter, r *http.Request, v viewer) {
	ctx := r.Context()
	tab := r.URL.Query().Get("tab")
	if _, ok := tabs[tab]; !ok {
		tab = "open"
	}
	var after *casebook.CaseCursor
	if c, ok := parseCursor(r.URL.Query().Get("after")); ok {
		after = &c
	}
	org, owner := v.scope()
	all, err := s.store.Cases(ctx, casebook.CaseFilter{OrgID: org, OwnerID: owner, Statuses: tabs[tab], After: after, Limit: pageSize + 1})
	if err != nil {
		s.serverError(w, r, "case list", err)
		return
	}
	p := CaseListPage{
		Layout: Layout{Title: "Cases", User: &v.User, Flash: s.sessions.PopString(ctx, keyFlash)},
		Tab:    tab,
		Paged:  after != nil,
	}
	if len(all) > pageSize {
		all = all[:pageSize]
		last := all[len(all)-1]
		p.Next = formatCursor(casebook.CaseCursor{UpdatedAt: last.UpdatedAt, ID: last.ID})
	}
	p.Cases = all
	s.render(w, r, http.StatusOK, "cases", p)
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
