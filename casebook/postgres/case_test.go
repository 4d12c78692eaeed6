package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

	var got []int64
	filter := casebook.CaseFilter{OrgID: f.org.ID, Statuses: []casebook.Status{casebook.StatusOpen, casebook.StatusPending}, Limit: 3}
	for page := 0; ; page++ {
		cs, err := f.st.Cases(ctx, filter)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			got = append(got, c.Number)
		}
		if len(cs) < filter.Limit {
			break
		}
		last := cs[len(cs)-1]
		filter.After = &casebook.CaseCursor{UpdatedAt: last.UpdatedAt, ID: last.ID}
		if page > 20 {
			t.Fatal("pagination does not end")
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
}
