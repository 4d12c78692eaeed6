package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook/web"
)

// A disabled user's live session ends at its next request, and the password no longer
// logs in; enabled again, it does.
func TestDisabledUserSessionEnds(t *testing.T) {
	e := newEnv(t)
	c := e.loggedIn(e.alice.Email, alicePW)
	if r := c.get("/cases"); r.StatusCode != http.StatusOK {
		t.Fatalf("cases: %d", r.StatusCode)
	}
	e.disable(e.alice)
	if n := e.count(`SELECT count(*) FROM sessions WHERE user_id = $1`, e.alice.ID); n != 0 {
		t.Errorf("%d sessions left after disable", n)
	}
	for _, path := range []string{"/cases", "/cases/" + e.ref(e.case1), "/account/sessions"} {
		if r := c.get(path); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
			t.Errorf("GET %s after disable: %d %s", path, r.StatusCode, r.Header.Get("Location"))
		}
	}
	if r := c.upload(e.ref(e.case1), upFile{"a.txt", []byte("after disable")}); r.StatusCode != http.StatusSeeOther {
		t.Errorf("upload after disable: %d", r.StatusCode)
	}
	if r := e.client().login(e.alice.Email, alicePW); r.StatusCode != http.StatusOK {
		t.Errorf("disabled user logged in: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if _, err := e.st.SetUserDisabled(context.Background(), e.alice.ID, false); err != nil {
		t.Fatal(err)
	}
	e.loggedIn(e.alice.Email, alicePW)
}

// A session whose row a request in flight writes back after it was ended still ends:
// the user's session epoch moved on.
func TestRevokedSessionCannotBeWrittenBack(t *testing.T) {
	e := newEnv(t)
	c := e.loggedIn(e.alice.Email, alicePW)
	token := sessionCookie(t, c)
	var data []byte
	var expiry time.Time
	if err := e.st.DB().QueryRow(`SELECT data, expiry FROM sessions WHERE token = $1`, token).Scan(&data, &expiry); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.st.RevokeSessions(context.Background(), e.alice.ID, ""); err != nil {
		t.Fatal(err)
	}
	// What scs's store does when a request that began before the revocation ends.
	e.st.DB().MustExec(`INSERT INTO sessions (token, data, expiry) VALUES ($1, $2, $3)`, token, data, expiry)
	if r := c.get("/cases"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Errorf("written-back session: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
}

// A user sees their sessions from the page header and ends the others.
func TestSessionsPage(t *testing.T) {
	e := newEnv(t)
	phone := e.loggedIn(e.alice.Email, alicePW)
	desk := e.loggedIn(e.alice.Email, alicePW)
	cases := desk.get("/cases")
	if !strings.Contains(cases.body, `href="/account/sessions"`) {
		t.Fatalf("the header has no link to the sessions page")
	}
	page := desk.get("/account/sessions")
	if page.StatusCode != http.StatusOK || strings.Count(page.body, "<tr") != 3 || strings.Count(page.body, "(this browser)") != 1 ||
		!strings.Contains(page.body, "127.0.0.1") || !strings.Contains(page.body, "Go-http-client") {
		t.Fatalf("sessions page: %d\n%s", page.StatusCode, page.body)
	}
	if strings.Contains(page.body, sessionCookie(t, desk)) || strings.Contains(page.body, sessionCookie(t, phone)) {
		t.Error("the page shows a session token")
	}
	r := desk.post("/account/sessions/end-others", nil)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account/sessions" {
		t.Fatalf("end others: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if r := phone.get("/cases"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("the other session survives: %d", r.StatusCode)
	}
	page = desk.get("/account/sessions")
	if page.StatusCode != http.StatusOK || !strings.Contains(page.body, "Your other session is ended.") || strings.Count(page.body, "<tr") != 2 {
		t.Errorf("after ending the others: %d\n%s", page.StatusCode, page.body)
	}
	if r := desk.get("/cases"); r.StatusCode != http.StatusOK {
		t.Errorf("this session ended too: %d", r.StatusCode)
	}
	if a := e.audits("sessions_revoke"); len(a) != 1 || a[0].Outcome != "ended_1" {
		t.Errorf("audit rows: %+v", a)
	}
	// Another user's sessions are not listed.
	bob := e.loggedIn(e.bob.Email, bobPW)
	if page := bob.get("/account/sessions"); strings.Count(page.body, "<tr") != 2 {
		t.Errorf("bob sees %d sessions", strings.Count(page.body, "<tr")-1)
	}
}

// Strangers' failures lock the account for strangers only: its owner logs in from a
// browser that logged in before, a refused stranger costs no hash, and the emailed
// temporary password works from anywhere.
func TestLockoutSparesKnownBrowsers(t *testing.T) {
	e := newEnv(t, func(o *web.Options) {
		o.Account = web.Throttle{Free: 2, Window: time.Hour, Max: time.Hour}
		o.LockMemory = -1 // locks end by hand below
	})
	known := e.loggedIn(e.alice.Email, alicePW)
	known.post("/logout", nil)

	attacker := e.client()
	for range 6 {
		attacker.login(e.alice.Email, "guessing guessing guessing")
	}
	if n := e.count(`SELECT count(*) FROM login_throttle WHERE key = 'account:alice@acme.test' AND locked_until > now()`); n != 1 {
		t.Fatalf("the account is not locked for strangers")
	}
	before := e.hasher.Hashes()
	if r := e.client().login(e.alice.Email, alicePW); r.StatusCode != http.StatusOK {
		t.Errorf("a stranger with the right password got in while locked: %d", r.StatusCode)
	}
	if n := e.hasher.Hashes() - before; n != 0 {
		t.Errorf("a refusal by the lock cost %d hashes", n)
	}
	if r := known.login(e.alice.Email, alicePW); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/cases" {
		t.Errorf("the known browser is locked out: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	known.post("/logout", nil)
	// A device cookie for another account, or a forged one, does not help.
	bobs := e.loggedIn(e.bob.Email, bobPW)
	if r := bobs.login(e.alice.Email, alicePW); r.StatusCode != http.StatusOK {
		t.Errorf("bob's browser logs in as locked alice: %d", r.StatusCode)
	}
	u, _ := url.Parse(e.ts.URL)
	forged := e.client()
	forged.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-casebook-device", Value: "AAAAAAAAAAFuU-gpd9VfDP8DR7NemNXHn7hcE5dbunznUrQH", Path: "/"}})
	if r := forged.login(e.alice.Email, alicePW); r.StatusCode != http.StatusOK {
		t.Errorf("a forged device cookie logs in: %d", r.StatusCode)
	}
	// Failures from the known browser count against its own cookie only.
	for range 3 {
		known.login(e.alice.Email, "typo typo typo typo")
	}
	if r := known.login(e.alice.Email, alicePW); r.StatusCode != http.StatusOK {
		t.Errorf("the known browser's own failures did not lock it: %d", r.StatusCode)
	}
	// The emailed temporary password proves the mailbox: it works while locked.
	e.client().forgot(e.alice.Email)
	code := e.outboxPasswords(e.alice.Email)[0]["password"]
	if r := e.client().login(e.alice.Email, code); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/password" {
		t.Errorf("temporary password while locked: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	// Unlocking clears the account's and its browsers' locks.
	for range 3 {
		attacker.login(e.alice.Email, "guessing guessing guessing")
	}
	key, prefix := web.UnlockKeys(e.alice.Email, e.alice.ID)
	if n, err := e.st.ClearLoginLocks(context.Background(), key, prefix); err != nil || n < 2 {
		t.Fatalf("unlock cleared %d rows, %v", n, err)
	}
	for _, c := range []*client{known, e.client()} {
		if r := c.login(e.alice.Email, alicePW); r.StatusCode != http.StatusSeeOther {
			t.Errorf("after unlock: %d", r.StatusCode)
		}
	}
	var outcomes []string
	for _, a := range e.audits("login") {
		outcomes = append(outcomes, a.Outcome)
	}
	if !strings.Contains(strings.Join(outcomes, " "), "failure failure failure locked locked locked locked") {
		t.Errorf("login outcomes: %v", outcomes)
	}
}

// TestLockoutSparesKnownBrowsersWithMFA: strangers' failures lock a staff account,
// whose login needs a code too; from the browser it used before, its owner types the
// password and the code and gets in, and the code spends that browser's budget only.
func TestLockoutSparesKnownBrowsersWithMFA(t *testing.T) {
	e := newEnv(t, func(o *web.Options) {
		o.Account = web.Throttle{Free: 2, Window: time.Hour, Max: time.Hour}
		o.LockMemory = -1
	})
	known := e.loggedIn(e.sam.Email, samPW) // enrols the second factor
	known.post("/logout", nil)
	attacker := e.client()
	for range 6 {
		attacker.login(e.sam.Email, "guessing guessing guessing")
	}
	if n := e.count(`SELECT count(*) FROM login_throttle WHERE key = 'account:sam@support.test' AND locked_until > now()`); n != 1 {
		t.Fatalf("the account is not locked for strangers")
	}
	if r := known.login(e.sam.Email, samPW); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login/code" {
		t.Fatalf("the known browser's password: %d %s, want the code page", r.StatusCode, r.Header.Get("Location"))
	}
	if r := known.post("/login/code", url.Values{"code": {e.totpCode(e.sam.Email)}}); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/cases" {
		t.Errorf("the known browser's code: %d %s, want /cases", r.StatusCode, r.Header.Get("Location"))
	}
	if n := e.count(`SELECT count(*) FROM login_throttle WHERE key = 'account:sam@support.test' AND locked_until > now()`); n != 1 {
		t.Errorf("the owner's login lifted the strangers' lock")
	}
}
