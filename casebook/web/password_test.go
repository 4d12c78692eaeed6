package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/web"
)

// outboxPasswords returns the temporary-password mails queued for email, oldest first.
func (e *env) outboxPasswords(email string) []map[string]string {
	e.t.Helper()
	var rows []string
	if err := e.st.DB().Select(&rows, `SELECT data FROM outbox WHERE kind = $1 AND recipient = $2 ORDER BY id`,
		casebook.MailTemporaryPassword, email); err != nil {
		e.t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range rows {
		var m map[string]string
		if err := json.Unmarshal([]byte(r), &m); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// forgot asks for a temporary password and lets the reset worker handle the request,
// as Serve's background loop would.
func (c *client) forgot(email string) resp {
	c.e.t.Helper()
	r := c.post("/password/forgot", url.Values{"email": {email}})
	if _, err := c.e.srv.ProcessResetRequests(context.Background()); err != nil {
		c.e.t.Fatal(err)
	}
	return r
}

func TestForgotPasswordAnswersAlike(t *testing.T) {
	e := newEnv(t)
	type answer struct {
		Status int
		Header http.Header
		Body   string
	}
	var answers []answer
	// Known, unknown, and known but over the hourly cap (the 4th request).
	for _, email := range []string{e.alice.Email, "nobod@acme.test", e.alice.Email, e.alice.Email, e.alice.Email} {
		r := e.client().forgot(email)
		h := r.Header.Clone()
		h.Del("Date")
		answers = append(answers, answer{r.StatusCode, h, r.body})
	}
	for i := 1; i < len(answers); i++ {
		if diff := cmp.Diff(answers[0], answers[i]); diff != "" {
			t.Errorf("answer %d differs (-+):\n%s", i, diff)
		}
	}
	if !strings.Contains(answers[0].Body, "If an account with that address exists") {
		t.Errorf("answer = %q", answers[0].Body)
	}
	mails := e.outboxPasswords(e.alice.Email)
	if len(mails) != 3 {
		t.Fatalf("%d mails queued, want 3 (the 4th request in the hour is refused)", len(mails))
	}
	m := mails[0]
	exp, err := time.Parse(time.RFC3339, m["expires_at"])
	if err != nil || time.Until(exp) > 30*time.Minute || time.Until(exp) < 29*time.Minute {
		t.Errorf("expires_at = %q, want about 30 minutes from now", m["expires_at"])
	}
	if m["reason"] != "reset" || m["name"] != "Alice" || len(m["password"]) < 24 {
		t.Errorf("mail data = %v", m)
	}
	var outcomes []string
	for _, a := range e.audits("reset_request") {
		outcomes = append(outcomes, a.Outcome)
	}
	if diff := cmp.Diff([]string{"issued", "unknown_user", "issued", "issued", "rate_limited"}, outcomes); diff != "" {
		t.Errorf("reset audit (-want +got):\n%s", diff)
	}
	if n := e.count(`SELECT count(*) FROM reset_codes WHERE code_hash LIKE '%' || $1 || '%'`, mails[2]["password"]); n != 0 {
		t.Errorf("the code is stored in clear")
	}
}

func TestTemporaryPasswordFlow(t *testing.T) {
	e := newEnv(t)
	e.client().forgot(e.alice.Email)
	e.client().forgot(e.alice.Email)
	mails := e.outboxPasswords(e.alice.Email)
	older, code := mails[0]["password"], mails[1]["password"]

	// The current password keeps working until the code is used.
	e.loggedIn(e.alice.Email, alicePW)
	// A new request voids the older code.
	if r := e.client().login(e.alice.Email, older); r.StatusCode != http.StatusOK {
		t.Errorf("older code still works: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	other := e.loggedIn(e.alice.Email, alicePW)

	c := e.client()
	r := c.login(e.alice.Email, strings.ToUpper(code))
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/password" {
		t.Fatalf("login with the code: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	// Nothing else is reachable until a new password is set.
	for _, path := range []string{"/cases", "/cases/" + e.ref(e.case1), "/attachments/1", "/"} {
		if r := c.get(path); r.StatusCode != http.StatusSeeOther || (path != "/" && r.Header.Get("Location") != "/password") {
			t.Errorf("GET %s before the new password: %d %s", path, r.StatusCode, r.Header.Get("Location"))
		}
	}
	if r := c.upload(e.ref(e.case1), upFile{"a.txt", []byte("hello there")}); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/password" {
		t.Errorf("upload before the new password: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	page := c.get("/password")
	if page.StatusCode != http.StatusOK || !strings.Contains(page.body, "Set a new password") || strings.Contains(page.body, `name="current"`) {
		t.Errorf("forced page: %d", page.StatusCode)
	}
	// Single use.
	if r := e.client().login(e.alice.Email, code); r.StatusCode != http.StatusOK {
		t.Errorf("code works twice: %d", r.StatusCode)
	}
	tokenBefore := sessionCookie(t, c)
	r = c.post("/password", url.Values{"new": {"a fresh kettle sings at noon"}, "confirm": {"a fresh kettle sings at noon"}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/cases" {
		t.Fatalf("set new password: %d %s %s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	if after := sessionCookie(t, c); after == tokenBefore {
		t.Errorf("token not rotated at password change")
	}
	if r := c.get("/cases"); r.StatusCode != http.StatusOK {
		t.Errorf("cases after the new password: %d", r.StatusCode)
	}
	// The other session of the user is over; the old password is too.
	if r := other.get("/cases"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("other session survives the password change: %d", r.StatusCode)
	}
	if r := e.client().login(e.alice.Email, alicePW); r.StatusCode != http.StatusOK {
		t.Errorf("old password still works: %d", r.StatusCode)
	}
	e.loggedIn(e.alice.Email, "a fresh kettle sings at noon")
	if len(e.audits("password_change")) != 1 {
		t.Errorf("password change not audited")
	}
}

func TestTemporaryPasswordExpires(t *testing.T) {
	e := newEnv(t)
	e.client().forgot(e.alice.Email)
	code := e.outboxPasswords(e.alice.Email)[0]["password"]
	e.st.DB().Exec(`UPDATE reset_codes SET expires_at = now() - interval '1 second'`)
	if r := e.client().login(e.alice.Email, code); r.StatusCode != http.StatusOK {
		t.Errorf("expired code works: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestNewAccountTemporaryPassword(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	code, issued, err := web.IssueTemporaryPassword(ctx, e.st, e.bob, web.TemporaryPassword{Reason: casebook.ReasonNewAccount, TTL: 7 * 24 * time.Hour})
	if err != nil || !issued {
		t.Fatalf("issue: %v %v", issued, err)
	}
	m := e.outboxPasswords(e.bob.Email)[0]
	if m["reason"] != "new_account" || m["password"] != code {
		t.Errorf("mail data = %v", m)
	}
	if r := e.client().login(e.bob.Email, code); r.Header.Get("Location") != "/password" {
		t.Errorf("new account login: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t)
	c := e.loggedIn(e.alice.Email, alicePW)
	other := e.loggedIn(e.alice.Email, alicePW)
	bob := e.loggedIn(e.bob.Email, bobPW)
	const next = "lanterns drift over the harbour"
	tests := []struct {
		name                  string
		current, new, confirm string
		want                  string
	}{
		{"wrong current", "not my password at all", next, next, "current password is not right"},
		{"mismatch", alicePW, next, next + "x", "differ"},
		{"too short", alicePW, "short one", "short one", "at least 15 characters"},
		{"common", alicePW, "passwordpassword", "passwordpassword", "common passwords"},
		{"contains the email", alicePW, "alice@acme.test is me", "alice@acme.test is me", "email address"},
		{"same as current", alicePW, alicePW, alicePW, "your current one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.post("/password", url.Values{"current": {tt.current}, "new": {tt.new}, "confirm": {tt.confirm}})
			if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, tt.want) {
				t.Errorf("%d, body lacks %q", r.StatusCode, tt.want)
			}
		})
	}
	long := "a tortoise named Wendell once walked from Lisbon to Porto, stopping at every bakery on the way!!" // 96 characters
	r := c.post("/password", url.Values{"current": {alicePW}, "new": {long}, "confirm": {long}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("change: %d %s", r.StatusCode, r.body)
	}
	if r := other.get("/cases"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("other session survives: %d", r.StatusCode)
	}
	if n := must(e.st.SessionsOfUser(context.Background(), e.alice.ID)); n != 1 {
		t.Errorf("alice has %d sessions after the change, want 1", n)
	}
	if r := bob.get("/cases"); r.StatusCode != http.StatusOK {
		t.Errorf("another user's session ended: %d", r.StatusCode)
	}
	if r := c.get("/cases"); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Your new password is set.") {
		t.Errorf("changing session ended: %d", r.StatusCode)
	}
	e.loggedIn(e.alice.Email, long)
}
