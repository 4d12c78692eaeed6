package web

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"casebook/casebook"
)

// pageSize is the number of cases a list page shows.
const pageSize = 25

// tabs maps a tab to its statuses. Each status is fetched with its own keyset query
// and the pages merged: with one status per query, PostgreSQL walks the index
// (org_id, status, updated_at DESC, id DESC) in order and stops after a page, however
// many cases an org has; an IN list would sort every matching row.
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
	var after *Cursor
	if c, ok := parseCursor(r.URL.Query().Get("after")); ok {
		after = &c
	}
	org, owner := v.scope()
	var all []casebook.Case
	for _, st := range tabs[tab] {
		cs, err := s.store.CasePage(ctx, CaseQuery{OrgID: org, OwnerID: owner, Status: st, After: after, Limit: pageSize + 1})
		if err != nil {
			s.serverError(w, r, "case list", err)
			return
		}
		all = append(all, cs...)
	}
	slices.SortFunc(all, func(a, b casebook.Case) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	p := CaseListPage{
		Layout: Layout{Title: "Cases", User: &v.User, Flash: s.sessions.PopString(ctx, keyFlash)},
		Tab:    tab,
		Paged:  after != nil,
	}
	if len(all) > pageSize {
		all = all[:pageSize]
		last := all[len(all)-1]
		p.Next = formatCursor(Cursor{UpdatedAt: last.UpdatedAt, ID: last.ID})
	}
	p.Cases = all
	s.render(w, r, http.StatusOK, "cases", p)
}

// formatCursor writes a cursor as "MICROSECONDS.ID": PostgreSQL keeps microseconds.
func formatCursor(c Cursor) string {
	return fmt.Sprintf("%d.%d", c.UpdatedAt.UnixMicro(), c.ID)
}

// parseCursor reads a cursor; a missing or malformed one means the first page.
func parseCursor(s string) (Cursor, bool) {
	us, id, ok := strings.Cut(s, ".")
	if !ok {
		return Cursor{}, false
	}
	u, err1 := strconv.ParseInt(us, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil || n <= 0 {
		return Cursor{}, false
	}
	return Cursor{UpdatedAt: time.UnixMicro(u), ID: n}, true
}
