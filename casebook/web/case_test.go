package web_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
)

var caseLink = regexp.MustCompile(`<th scope="row"><a href="/cases/(CASE-\d+)">`)

func listed(body string) []string {
	var out []string
	for _, m := range caseLink.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

var nextLink = regexp.MustCompile(`href="(/cases\?tab=\w+&amp;after=[0-9.]+)"`)

func TestCaseListTabsAndPages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// 30 more open or pending cases for Acme, 3 resolved, one closed, each a second apart
	// in activity, in an order unlike their numbers.
	var want []string
	for i := range 30 {
		c := must(e.st.OpenCase(ctx, postgres.NewCase{OrgID: e.org1.ID, RequesterID: e.alice.ID, OwnerID: e.sam.ID, Subject: fmt.Sprintf("Case %d", i)}))
		st := casebook.StatusOpen
		if i%3 == 0 {
			st = casebook.StatusPending
		}
		e.st.DB().MustExec(`UPDATE cases SET status = $2, updated_at = now() - make_interval(secs => $3) WHERE id = $1`, c.ID, st, (i*7)%30+1)
	}
	var resolved []string
	for i := range 4 {
		c := must(e.st.OpenCase(ctx, postgres.NewCase{OrgID: e.org1.ID, RequesterID: e.alice.ID, OwnerID: e.sam.ID, Subject: fmt.Sprintf("Old %d", i)}))
		st := casebook.StatusResolved
		if i == 3 {
			st = casebook.StatusClosed
		}
		e.st.DB().MustExec(`UPDATE cases SET status = $2, updated_at = now() - make_interval(days => $3) WHERE id = $1`, c.ID, st, i+1)
		resolved = append(resolved, e.ref(c))
	}
	all := must(e.st.Cases(ctx, casebook.CaseFilter{OrgID: e.org1.ID, Statuses: []casebook.Status{casebook.StatusOpen, casebook.StatusPending}, Limit: 100}))
	for _, c := range all {
		want = append(want, e.ref(c))
	}

	c := e.loggedIn(e.alice.Email, alicePW)
	var got []string
	r := c.get("/cases")
	for page := 0; ; page++ {
		if r.StatusCode != http.StatusOK {
			t.Fatalf("page %d: %d", page, r.StatusCode)
		}
		got = append(got, listed(r.body)...)
		m := nextLink.FindStringSubmatch(r.body)
		if m == nil {
			break
		}
		r = c.get(strings.ReplaceAll(m[1], "&amp;", "&"))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("open tab across pages (-want +got):\n%s", diff)
	}
	if len(want) != 31 {
		t.Errorf("%d open cases, want 31", len(want))
	}
	r = c.get("/cases?tab=resolved")
	if diff := cmp.Diff(resolved, listed(r.body)); diff != "" {
		t.Errorf("resolved tab (-want +got):\n%s", diff)
	}
	if strings.Contains(r.body, "Globex") || strings.Contains(c.get("/cases").body, "Globex") {
		t.Errorf("another org's case is listed")
	}
	first := c.get("/cases").body
	for _, col := range []string{"Lab results for Alice", ">open<", ">Sam<", "<time datetime=", "<td>1</td>"} {
		if !strings.Contains(first, col) {
			t.Errorf("list row lacks %q", col)
		}
	}
	if r := c.get("/cases?after=garbage"); r.StatusCode != http.StatusOK {
		t.Errorf("bad cursor: %d", r.StatusCode)
	}
}

// Staff see every case of the support team (there is one staff organisation): Mine
// lists the cases they own, All every case; any case and its files open.
func TestStaffSeeEveryCase(t *testing.T) {
	e := newEnv(t)
	c := e.loggedIn(e.sam.Email, samPW)
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/cases", []string{e.ref(e.case1)}},
		{"/cases?view=mine", []string{e.ref(e.case1)}},
		{"/cases?view=all", []string{e.ref(e.case2), e.ref(e.case1)}},
	} {
		if diff := cmp.Diff(tt.want, listed(c.get(tt.path).body)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.path, diff)
		}
	}
	if r := c.get("/cases/" + e.ref(e.case2)); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Globex secret scan") {
		t.Errorf("a case owned by someone else: %d", r.StatusCode)
	}
	if r := c.get(fmt.Sprintf("/attachments/%d", e.att2.ID)); r.StatusCode != http.StatusOK || r.body != string(e.att2Body) {
		t.Errorf("an attachment on a case owned by someone else: %d", r.StatusCode)
	}
}

func TestCasePage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, src := range []casebook.Source{casebook.SourceSlack, casebook.SourceDiscord} {
		if _, err := e.svc.AddUpdate(ctx, casebook.Update{Source: src, ExternalID: "x-" + string(src), CaseNumber: e.case1.Number,
			Author: casebook.Author{UserID: e.alice.ID}, Body: "Sent from " + string(src) + "\n<script>alert(1)</script>"}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.loggedIn(e.alice.Email, alicePW)
	r := c.get("/cases/" + strings.ToLower(e.ref(e.case1)))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("case page: %d", r.StatusCode)
	}
	for _, want := range []string{
		"Lab results for Alice", ">Email<", ">Slack<", ">Discord<", "results.pdf",
		fmt.Sprintf(`href="/attachments/%d"`, e.att1.ID), "Alice &lt;alice@acme.test&gt;", "&lt;script&gt;", "Add attachment",
		`enctype="multipart/form-data"`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("case page lacks %q", want)
		}
	}
	if strings.Contains(r.body, "<script>") {
		t.Errorf("case page carries unescaped script")
	}
	views := e.audits("case_view")
	if len(views) != 1 || views[0].Object != e.ref(e.case1) || views[0].Outcome != "success" || *views[0].UserID != e.alice.ID || *views[0].OrgID != e.org1.ID {
		t.Errorf("case view audit = %+v", views)
	}
	e.st.SetCaseStatus(ctx, e.case1.Number, casebook.StatusClosed)
	if r := c.get("/cases/" + e.ref(e.case1)); strings.Contains(r.body, "Add attachment") {
		t.Errorf("a closed case offers uploads")
	}
	for _, bad := range []string{"CASE-999999", "nonsense", "0"} {
		if r := c.get("/cases/" + bad); r.StatusCode != http.StatusNotFound {
			t.Errorf("case %s: %d", bad, r.StatusCode)
		}
	}
}
