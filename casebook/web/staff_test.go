package web_test

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/ingest"
)

// reply posts a staff reply with its text first, as the form sends it.
func (c *client) reply(ref, body string, files ...upFile) resp {
	c.e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("body", body)
	for _, f := range files {
		w := must(mw.CreateFormFile("files", f.name))
		w.Write(f.body)
	}
	mw.Close()
	req := must(http.NewRequest("POST", c.e.ts.URL+"/cases/"+ref+"/reply", &buf))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return c.do(req)
}

// quarantineMail delivers a mail from a stranger naming case1 through the mail
// processor, which quarantines it, and returns the row's id.
func (e *env) quarantineMail(id string) int64 {
	e.t.Helper()
	raw := "From: Mallory <mallory@evil.test>\r\nTo: support@support.test\r\nSubject: Re: [" + e.ref(e.case1) + "] scans\r\n" +
		"Message-ID: <" + id + "@evil.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nHere are the scans.\r\n" +
		"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"scan-" + id + ".pdf\"\r\n\r\n%PDF-1.4\nscan " + id + "\n%%EOF\n\r\n--b--\r\n"
	rep, err := e.proc.Handle(context.Background(), ingest.Location{}, strings.NewReader(raw))
	if err != nil || rep.Disposition != ingest.Quarantined {
		e.t.Fatalf("mail %s: %+v, %v", id, rep, err)
	}
	var qid int64
	must(0, e.st.DB().Get(&qid, `SELECT id FROM quarantine WHERE message_id = $1`, id+"@evil.test"))
	return qid
}

func TestCustomerGetsNoStaffRoute(t *testing.T) {
	e := newEnv(t)
	qid := e.quarantineMail("q1")
	c := e.loggedIn(e.alice.Email, alicePW)
	ref := e.ref(e.case1)
	for _, tt := range []struct {
		method, path string
	}{
		{"GET", "/quarantine"},
		{"GET", fmt.Sprintf("/quarantine/%d", qid)},
		{"GET", fmt.Sprintf("/quarantine/%d/files/0", qid)},
		{"POST", fmt.Sprintf("/quarantine/%d/release", qid)},
		{"POST", fmt.Sprintf("/quarantine/%d/drop", qid)},
		{"POST", "/cases/" + ref + "/reply"},
		{"POST", "/cases/" + ref + "/status"},
		{"POST", "/cases/" + ref + "/owner"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			before := len(e.audits("staff_page"))
			var r resp
			if tt.method == "GET" {
				r = c.get(tt.path)
			} else {
				r = c.post(tt.path, url.Values{"case": {ref}, "change": {"close"}, "owner": {fmt.Sprint(e.sam2.ID)}, "body": {"hi"}})
			}
			if r.StatusCode != http.StatusNotFound || !strings.Contains(r.body, "There is no such page.") || strings.Contains(r.body, "mallory") {
				t.Errorf("%d %q", r.StatusCode, r.body)
			}
			rows := e.audits("staff_page")
			if len(rows) != before+1 || rows[len(rows)-1].Outcome != "denied" || *rows[len(rows)-1].UserID != e.alice.ID {
				t.Errorf("no denied audit row: %+v", rows)
			}
		})
	}
	if n := e.count(`SELECT count(*) FROM quarantine WHERE status = 'pending'`); n != 1 {
		t.Errorf("the customer changed the quarantine")
	}
	if c := must(e.st.CaseByNumber(context.Background(), e.case1.Number)); c.Status != casebook.StatusOpen || c.OwnerID != e.sam.ID {
		t.Errorf("the customer changed the case: %+v", c)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE kind = 'case_email'`); n != 0 {
		t.Errorf("the customer sent a reply")
	}
}

func TestStaffSearch(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.loggedIn(e.sam.Email, samPW)
	must(e.st.ChangeCaseStatus(ctx, e.case2.Number, []casebook.Status{casebook.StatusOpen}, casebook.StatusResolved, casebook.AuditEntry{Action: "case_resolve"}))
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"view=all&q=globex", nil},
		{"view=all&tab=resolved&q=globex", []string{e.ref(e.case2)}},
		{"view=all&q=" + e.ref(e.case2), []string{e.ref(e.case2)}},
		{"view=all&q=2", []string{e.ref(e.case2)}},
		{"view=all&q=LAB+RESULTS", []string{e.ref(e.case1)}},
		{"view=all&q=alice%40acme", []string{e.ref(e.case1)}},
		{"view=all&tab=resolved&q=bob", []string{e.ref(e.case2)}},
		{"view=all&q=100%25", nil},
		{"view=mine&tab=resolved&q=globex", nil},
	} {
		r := c.get("/cases?" + tt.query)
		if diff := cmp.Diff(tt.want, listed(r.body)); r.StatusCode != http.StatusOK || diff != "" {
			t.Errorf("%s: %d (-want +got):\n%s", tt.query, r.StatusCode, diff)
		}
	}
	// Customers have no search: the parameter changes nothing for them.
	a := e.loggedIn(e.alice.Email, alicePW)
	if diff := cmp.Diff([]string{e.ref(e.case1)}, listed(a.get("/cases?view=all&q=globex").body)); diff != "" {
		t.Errorf("customer list (-want +got):\n%s", diff)
	}
}

var flashRe = regexp.MustCompile(`<p class="notice" role="status">([^<]*)</p>`)

func TestStaffReply(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.loggedIn(e.sam.Email, samPW)
	ref := e.ref(e.case1)

	page := c.get("/cases/" + ref)
	for _, want := range []string{`action="/cases/` + ref + `/reply"`, `name="change" value="resolve"`, `name="change" value="close"`,
		fmt.Sprintf(`<option value="%d" selected>`, e.sam.ID), fmt.Sprintf(`<option value="%d">`, e.sam2.ID), `href="/quarantine"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("staff case page lacks %q", want)
		}
	}
	if a := e.loggedIn(e.alice.Email, alicePW).get("/cases/" + ref); strings.Contains(a.body, "/reply") || strings.Contains(a.body, "/quarantine") {
		t.Errorf("the customer's case page shows staff controls")
	}

	r := c.reply(ref, "Your results are in.\nCall us if anything is unclear.", upFile{"letter.pdf", []byte("%PDF-1.4\nletter\n%%EOF\n")})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/cases/"+ref {
		t.Fatalf("reply: %d %s %s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	if m := flashRe.FindStringSubmatch(c.get("/cases/" + ref).body); m == nil || m[1] != "Reply sent to alice@acme.test." {
		t.Errorf("flash: %v", m)
	}
	var mail struct {
		Recipient string `db:"recipient"`
		Data      string `db:"data"`
	}
	must(0, e.st.DB().Get(&mail, `SELECT recipient, data FROM outbox WHERE kind = 'case_email'`))
	if mail.Recipient != e.alice.Email || !strings.Contains(mail.Data, "Your results are in.") || !strings.Contains(mail.Data, `"event": "reply"`) {
		t.Errorf("case email: %+v", mail)
	}
	if n := e.count(`SELECT count(*) FROM attachments a JOIN updates u ON u.id = a.update_id WHERE u.source = 'system' AND a.filename = 'letter.pdf'`); n != 1 {
		t.Errorf("reply attachments: %d", n)
	}
	if rows := e.audits("case_reply"); len(rows) != 1 || *rows[0].UserID != e.sam.ID || rows[0].Object != ref {
		t.Errorf("reply audit: %+v", rows)
	}

	updates := func() int { return e.count(`SELECT count(*) FROM updates WHERE case_id = $1`, e.case1.ID) }
	before := updates()
	e.disable(e.bob)
	for _, tt := range []struct {
		name   string
		ref    string
		body   string
		status int
		want   string
	}{
		{"empty reply", ref, "  \n ", http.StatusBadRequest, "an empty reply is not sent"},
		{"requester disabled", e.ref(e.case2), "hello", http.StatusConflict, "account is disabled"},
		{"unknown case", "CASE-999999", "hello", http.StatusNotFound, "no such case"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := c.reply(tt.ref, tt.body)
			if r.StatusCode != tt.status || !strings.Contains(r.body, tt.want) {
				t.Errorf("%d, want %d with %q: %s", r.StatusCode, tt.status, tt.want, r.body)
			}
		})
	}
	must(e.st.ChangeCaseStatus(ctx, e.case1.Number, []casebook.Status{casebook.StatusOpen}, casebook.StatusClosed, casebook.AuditEntry{Action: "case_close"}))
	if r := c.reply(ref, "too late"); r.StatusCode != http.StatusConflict || !strings.Contains(r.body, "closed") {
		t.Errorf("reply to a closed case: %d", r.StatusCode)
	}
	if n := updates(); n != before {
		t.Errorf("refused replies added %d updates", n-before)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE kind = 'case_email'`); n != 1 {
		t.Errorf("refused replies queued mail: %d", n)
	}
}

func TestStaffStatusAndOwner(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.loggedIn(e.sam.Email, samPW)
	ref := e.ref(e.case1)
	status := func() casebook.Status { return must(e.st.CaseByNumber(ctx, e.case1.Number)).Status }
	for _, tt := range []struct {
		change string
		code   int
		want   casebook.Status
	}{
		{"resolve", http.StatusSeeOther, casebook.StatusResolved},
		{"resolve", http.StatusBadRequest, casebook.StatusResolved},
		{"reopen", http.StatusSeeOther, casebook.StatusOpen},
		{"reopen", http.StatusBadRequest, casebook.StatusOpen},
		{"close", http.StatusSeeOther, casebook.StatusClosed},
		{"resolve", http.StatusBadRequest, casebook.StatusClosed},
		{"delete", http.StatusBadRequest, casebook.StatusClosed},
		{"reopen", http.StatusSeeOther, casebook.StatusOpen},
	} {
		r := c.post("/cases/"+ref+"/status", url.Values{"change": {tt.change}})
		if r.StatusCode != tt.code || status() != tt.want {
			t.Errorf("%s: %d, status %s; want %d, %s", tt.change, r.StatusCode, status(), tt.code, tt.want)
		}
	}
	if n := len(e.audits("case_resolve")) + len(e.audits("case_close")) + len(e.audits("case_reopen")); n != 4 {
		t.Errorf("%d status audit rows, want one per change made (4)", n)
	}

	for _, tt := range []struct {
		owner string
		code  int
		want  int64
	}{
		{fmt.Sprint(e.alice.ID), http.StatusBadRequest, e.sam.ID},
		{"999999", http.StatusBadRequest, e.sam.ID},
		{"x", http.StatusBadRequest, e.sam.ID},
		{fmt.Sprint(e.sam2.ID), http.StatusSeeOther, e.sam2.ID},
	} {
		r := c.post("/cases/"+ref+"/owner", url.Values{"owner": {tt.owner}})
		if got := must(e.st.CaseByNumber(ctx, e.case1.Number)).OwnerID; r.StatusCode != tt.code || got != tt.want {
			t.Errorf("owner %s: %d, owner %d; want %d, %d", tt.owner, r.StatusCode, got, tt.code, tt.want)
		}
	}
	if rows := e.audits("case_reassign"); len(rows) != 1 || *rows[0].UserID != e.sam.ID || !strings.Contains(rows[0].Outcome, e.sam2.Email) {
		t.Errorf("reassign audit: %+v", rows)
	}
	// Handed over, the case leaves Sam's list and joins Sue's.
	if got := listed(c.get("/cases?view=mine").body); len(got) != 0 {
		t.Errorf("Sam's list: %v", got)
	}
}

func TestQuarantinePages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	q1, q2, q3 := e.quarantineMail("q1"), e.quarantineMail("q2"), e.quarantineMail("q3")
	sam := e.loggedIn(e.sam.Email, samPW)
	sue := e.loggedIn(e.sam2.Email, samPW)

	if r := sam.get("/cases"); !strings.Contains(r.body, `<span class="count">3</span>`) {
		t.Errorf("the staff header lacks the quarantine count")
	}
	list := sam.get("/quarantine")
	for _, want := range []string{fmt.Sprintf(`href="/quarantine/%d"`, q1), "sender_not_verified", "mallory@evil.test", "<td>none</td>", "Re: [" + e.ref(e.case1) + "] scans", "0 min"} {
		if !strings.Contains(list.body, want) {
			t.Errorf("queue lacks %q", want)
		}
	}
	item := sam.get(fmt.Sprintf("/quarantine/%d", q1))
	for _, want := range []string{"Here are the scans.", `value="` + e.ref(e.case1) + `"`, fmt.Sprintf(`href="/quarantine/%d/files/0"`, q1), "scan-q1.pdf"} {
		if !strings.Contains(item.body, want) {
			t.Errorf("mail page lacks %q", want)
		}
	}
	if rows := e.audits("quarantine_view"); len(rows) != 1 || *rows[0].UserID != e.sam.ID {
		t.Errorf("view audit: %+v", rows)
	}
	f := sam.get(fmt.Sprintf("/quarantine/%d/files/0", q1))
	if f.StatusCode != http.StatusOK || f.body != "%PDF-1.4\nscan q1\n%%EOF\n" || f.Header.Get("Content-Type") != "application/octet-stream" ||
		f.Header.Get("Content-Security-Policy") != "sandbox" || f.Header.Get("X-Content-Type-Options") != "nosniff" ||
		f.Header.Get("Cache-Control") != "no-store" || f.Header.Get("Content-Disposition") != `attachment; filename=scan-q1.pdf` {
		t.Errorf("file: %d %v %q", f.StatusCode, f.Header, f.body)
	}
	if r := sam.get(fmt.Sprintf("/quarantine/%d/files/1", q1)); r.StatusCode != http.StatusNotFound {
		t.Errorf("no such file: %d", r.StatusCode)
	}
	if r := sam.get("/quarantine/999999"); r.StatusCode != http.StatusNotFound {
		t.Errorf("no such mail: %d", r.StatusCode)
	}

	closed := must(e.st.OpenCase(ctx, openCase(e, "Closed one")))
	must(e.st.ChangeCaseStatus(ctx, closed.Number, []casebook.Status{casebook.StatusOpen}, casebook.StatusClosed, casebook.AuditEntry{Action: "case_close"}))
	attachments := func() int { return e.count(`SELECT count(*) FROM attachments WHERE filename = 'scan-q1.pdf'`) }
	pending := func(id int64) bool {
		return must(e.st.QuarantineByID(ctx, id)).Status == casebook.QuarantinePending
	}
	for _, tt := range []struct {
		name, ref string
		code      int
		want      string
	}{
		{"unknown case", "CASE-999999", http.StatusUnprocessableEntity, "There is no such case."},
		{"closed case", e.ref(closed), http.StatusConflict, "That case is closed"},
		{"not a reference", "lab results", http.StatusBadRequest, "name the case as CASE-000123"},
	} {
		r := sam.post(fmt.Sprintf("/quarantine/%d/release", q1), url.Values{"case": {tt.ref}})
		if r.StatusCode != tt.code || !strings.Contains(r.body, tt.want) || !pending(q1) || attachments() != 0 {
			t.Errorf("%s: %d %q, pending %v, %d attachments", tt.name, r.StatusCode, r.body, pending(q1), attachments())
		}
	}

	r := sam.post(fmt.Sprintf("/quarantine/%d/release", q1), url.Values{"case": {e.ref(e.case1)}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/quarantine" || attachments() != 1 || pending(q1) {
		t.Fatalf("release: %d %s, %d attachments", r.StatusCode, r.body, attachments())
	}
	if it := must(e.st.QuarantineByID(ctx, q1)); !strings.Contains(it.ResolvedBy, e.sam.Email) || it.UpdateID == nil {
		t.Errorf("released row: %+v", it)
	}
	var vouched string
	must(0, e.st.DB().Get(&vouched, `SELECT meta->>'vouched_by' FROM updates WHERE id = (SELECT update_id FROM quarantine WHERE id = $1)`, q1))
	if !strings.Contains(vouched, e.sam.Email) {
		t.Errorf("the update does not say who vouched: %q", vouched)
	}
	// Sue had the page open and clicks too: she is told, and nothing is added twice.
	r = sue.post(fmt.Sprintf("/quarantine/%d/release", q1), url.Values{"case": {e.ref(e.case1)}})
	if r.StatusCode != http.StatusConflict || !strings.Contains(r.body, "A colleague has dealt with this mail already") || !strings.Contains(r.body, "released by Sam") || attachments() != 1 {
		t.Errorf("second release: %d %q, %d attachments", r.StatusCode, r.body, attachments())
	}
	if r := sue.post(fmt.Sprintf("/quarantine/%d/drop", q1), nil); r.StatusCode != http.StatusConflict {
		t.Errorf("drop after release: %d", r.StatusCode)
	}

	if r := sue.post(fmt.Sprintf("/quarantine/%d/drop", q2), nil); r.StatusCode != http.StatusSeeOther || must(e.st.QuarantineByID(ctx, q2)).Status != casebook.QuarantineDropped {
		t.Errorf("drop: %d", r.StatusCode)
	}
	if rows := e.audits("quarantine_release"); len(rows) != 1 || *rows[0].UserID != e.sam.ID {
		t.Errorf("release audit: %+v", rows)
	}
	if rows := e.audits("quarantine_drop"); len(rows) != 1 || *rows[0].UserID != e.sam2.ID {
		t.Errorf("drop audit: %+v", rows)
	}
	list = sam.get("/quarantine")
	if strings.Contains(list.body, fmt.Sprintf(`href="/quarantine/%d"`, q1)) || !strings.Contains(list.body, fmt.Sprintf(`href="/quarantine/%d"`, q3)) ||
		!strings.Contains(list.body, `<span class="count">1</span>`) {
		t.Errorf("queue after the decisions: %s", list.body)
	}
}

// openCase is a new case of Alice's owned by Sam.
func openCase(e *env, subject string) postgres.NewCase {
	return postgres.NewCase{OrgID: e.org1.ID, RequesterID: e.alice.ID, OwnerID: e.sam.ID, Subject: subject}
}
