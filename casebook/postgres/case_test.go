package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lib/pq"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
)

// TestCasesKeyset pages through an org's open and pending cases, interleaved in time
// with resolved ones and another org's, and checks every page is in activity order and
// that together they hold each matching case exactly once.
func TestCasesKeyset(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	statuses := []casebook.Status{casebook.StatusOpen, casebook.StatusPending, casebook.StatusResolved}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 17 {
		c, err := f.st.OpenCase(ctx, postgres.NewCase{OrgID: f.org.ID, RequesterID: f.customer.ID, OwnerID: f.owner.ID, Subject: fmt.Sprint("case ", i)})
		if err != nil {
			t.Fatal(err)
		}
		st := statuses[i%3]
		// Cases 4 and 5 share a timestamp: the id breaks the tie.
		at := base.Add(time.Duration(i/2*2) * time.Minute)
		if _, err := f.st.DB().Exec(`UPDATE cases SET status = $2, updated_at = $3 WHERE id = $1`, c.ID, st, at); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.st.OpenCase(ctx, postgres.NewCase{OrgID: f.other.ID, RequesterID: f.stranger.ID, OwnerID: f.owner.ID, Subject: "other org"}); err != nil {
		t.Fatal(err)
	}

	// The same set and order by a plain query that sorts every row.
	var all []casebook.Case
	if err := f.st.DB().Select(&all, `SELECT number, updated_at, id FROM cases WHERE org_id = $1 AND status IN ('open', 'pending') ORDER BY updated_at DESC, id DESC`, f.org.ID); err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, c := range all {
		want = append(want, c.Number)
	}

	got := allPages(t, f, casebook.CaseFilter{OrgID: f.org.ID, Statuses: []casebook.Status{casebook.StatusOpen, casebook.StatusPending}, Limit: 3})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
}

// allPages lists the cases of filter page by page, following the cursor, and returns
// their numbers.
func allPages(t *testing.T, f *fixture, filter casebook.CaseFilter) []int64 {
	t.Helper()
	var got []int64
	for range 1000 {
		cs, err := f.st.Cases(t.Context(), filter)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			got = append(got, c.Number)
		}
		if len(cs) < filter.Limit {
			return got
		}
		last := cs[len(cs)-1]
		filter.After = &casebook.CaseCursor{UpdatedAt: last.UpdatedAt, ID: last.ID}
	}
	t.Fatal("pagination does not end")
	return nil
}

// TestSearchEveryPath checks a staff search against a query that reads every case,
// page by page, for texts that take each way: common among a tab's newest cases, in a
// small tab (read whole), rare (the trigram indexes, by id, for a subject and for a
// requester), and common but not among the newest (the ordered walk, filtered).
func TestSearchEveryPath(t *testing.T) {
	f := newFixture(t)
	bob, err := f.st.AddUser(t.Context(), postgres.NewUser{OrgID: &f.org.ID, Email: "bob@acme.test", Name: "Bob Stone"})
	if err != nil {
		t.Fatal(err)
	}
	// 12,000 cases, the newest last: "Lab results" on most, "Invoice" on the 3,000 newest
	// and every 700th, four closed, Bob the requester of every 500th.
	if _, err := f.st.DB().Exec(`INSERT INTO cases (org_id, requester_id, owner_id, subject, status, updated_at)
		SELECT $1, CASE WHEN g % 500 = 0 THEN $4::bigint ELSE $2::bigint END, $3,
			CASE WHEN g > 9000 OR g % 700 = 0 THEN 'Invoice ' || g ELSE 'Lab results ' || g END,
			CASE WHEN g % 3000 = 0 THEN 'closed' WHEN g % 2 = 0 THEN 'resolved' ELSE 'open' END,
			now() - (12000 - g) * interval '1 second'
		FROM generate_series(1, 12000) AS g`, f.org.ID, f.customer.ID, f.owner.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	// And 200 pending ones, "Lab results" all, older than every other.
	if _, err := f.st.DB().Exec(`INSERT INTO cases (org_id, requester_id, owner_id, subject, status, updated_at)
		SELECT $1, $2, $3, 'Lab results p' || g, 'pending', now() - interval '1 day' - g * interval '1 minute'
		FROM generate_series(1, 200) AS g`, f.org.ID, f.customer.ID, f.owner.ID); err != nil {
		t.Fatal(err)
	}
	open, resolved, closed, pending := casebook.StatusOpen, casebook.StatusResolved, casebook.StatusClosed, casebook.StatusPending
	for _, tt := range []struct {
		text string
		tabs []casebook.Status
	}{
		{"invoice", []casebook.Status{open}},                // common among the tab's newest
		{"invoice", nil},                                    // the same over every tab
		{"lab results", []casebook.Status{closed}},          // a tab of four, read whole
		{"results 1199", []casebook.Status{open, resolved}}, // rare: by id
		{"bob stone", []casebook.Status{resolved}},          // a requester, rare: by id
		{"lab results", []casebook.Status{resolved}},        // common, but not among the newest: the filtered walk
		// A full page from the pending tab alone, while older-looking resolved matches
		// beyond the newest it read are newer than all of it.
		{"lab results", []casebook.Status{resolved, pending}},
		{"nothing like this", []casebook.Status{open}},
	} {
		t.Run(fmt.Sprint(tt.text, tt.tabs), func(t *testing.T) {
			want := bruteSearch(t, f, tt.text, tt.tabs)
			got := allPages(t, f, casebook.CaseFilter{Text: tt.text, Statuses: tt.tabs, Limit: 40})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%d cases, want %d (-want +got):\n%s", len(got), len(want), diff)
			}
		})
	}
}

// bruteSearch is a search that reads every case.
func bruteSearch(t *testing.T, f *fixture, text string, tabs []casebook.Status) []int64 {
	t.Helper()
	statuses := []string{}
	for _, st := range tabs {
		statuses = append(statuses, string(st))
	}
	var want []int64
	if err := f.st.DB().Select(&want, `SELECT c.number FROM cases c JOIN users r ON r.id = c.requester_id
		WHERE (c.subject ILIKE $1 OR r.email ILIKE $1 OR r.name ILIKE $1) AND (cardinality($2::text[]) = 0 OR c.status = ANY($2))
		ORDER BY c.updated_at DESC, c.id DESC`, "%"+text+"%", pq.Array(statuses)); err != nil {
		t.Fatal(err)
	}
	return want
}

// BenchmarkSearchInTab searches 200,000 cases whose subjects all hold "results": a
// rare text, the common one in a tab where it is everywhere (open), and the common one
// in a tab that holds few cases at all (closed) — the case a search that only counted
// matches over every tab read the whole list for:
//
//	go test -run '^$' -bench SearchInTab -benchtime 200x ./casebook/postgres
func BenchmarkSearchInTab(b *testing.B) {
	f := newFixture(b)
	const cases = 200_000
	if _, err := f.st.DB().Exec(`INSERT INTO cases (org_id, requester_id, owner_id, subject, status, updated_at)
		SELECT $1, $2, $3, 'Lab results ' || g, CASE WHEN g % 10000 = 0 THEN 'closed' ELSE 'open' END, now() - g * interval '1 minute'
		FROM generate_series(1, $4) AS g`, f.org.ID, f.customer.ID, f.owner.ID, cases); err != nil {
		b.Fatal(err)
	}
	if _, err := f.st.DB().Exec(`ANALYZE cases`); err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		text   string
		status casebook.Status
		want   int
	}{
		{"rare", "results 123456", casebook.StatusOpen, 1},
		{"common in its tab", "results", casebook.StatusOpen, 50},
		{"common, few in the tab", "results", casebook.StatusClosed, cases / 10000},
	} {
		b.Run(tt.name, func(b *testing.B) {
			filter := casebook.CaseFilter{Text: tt.text, Statuses: []casebook.Status{tt.status}, Limit: 50}
			for b.Loop() {
				cs, err := f.st.Cases(b.Context(), filter)
				if err != nil || len(cs) != tt.want {
					b.Fatalf("%d cases, %v; want %d", len(cs), err, tt.want)
				}
			}
		})
	}
}
