package web_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook/password"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/web"
)

func TestLoginAndLogout(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	if r := c.get("/cases"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Fatalf("cases before login: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	r := c.login("Alice@Acme.test", alicePW)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/cases" {
		t.Fatalf("login: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range r.Cookies() {
		if ck.Name == "__Host-casebook" {
			cookie = ck
		}
	}
	if cookie == nil {
		t.Fatalf("no __Host-casebook cookie in %q", r.Header.Values("Set-Cookie"))
	}
	if !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" || cookie.Domain != "" || !cookie.Expires.IsZero() {
		t.Errorf("cookie = %+v, want Secure HttpOnly SameSite=Lax Path=/ without Domain and Expires", cookie)
	}
	// Idle timeout: the server-side session expires within 15 minutes of the last request.
	var expiry time.Time
	if err := e.st.DB().Get(&expiry, `SELECT expiry FROM sessions WHERE token = $1`, cookie.Value); err != nil {
		t.Fatal(err)
	}
	if d := time.Until(expiry); d > 15*time.Minute || d < 14*time.Minute {
		t.Errorf("session expires in %v, want about 15 minutes", d)
	}
	if n := e.count(`SELECT count(*) FROM sessions WHERE token = $1 AND user_id = $2`, cookie.Value, e.alice.ID); n != 1 {
		t.Errorf("session not tagged with its user")
	}
	if r := c.get("/cases"); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Lab results for Alice") {
		t.Fatalf("cases after login: %d", r.StatusCode)
	}

	r = c.post("/logout", nil)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Fatalf("logout: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if n := e.count(`SELECT count(*) FROM sessions WHERE token = $1`, cookie.Value); n != 0 {
		t.Errorf("session survives logout")
	}
	if r := c.get("/cases"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("cases after logout: %d", r.StatusCode)
	}
	// Replaying the old cookie gets nothing either.
	stolen := e.client()
	u, _ := url.Parse(e.ts.URL)
	stolen.Jar.SetCookies(u, []*http.Cookie{cookie})
	if r := stolen.get("/cases"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("old cookie after logout: %d", r.StatusCode)
	}
	var outcomes []string
	for _, a := range e.audits("login") {
		outcomes = append(outcomes, a.Outcome)
	}
	if diff := cmp.Diff([]string{"success"}, outcomes); diff != "" {
		t.Errorf("login audit (-want +got):\n%s", diff)
	}
	if len(e.audits("logout")) != 1 {
		t.Errorf("logout not audited")
	}
}

func TestLogoutIsPostOnly(t *testing.T) {
	e := newEnv(t)
	c := e.loggedIn(e.alice.Email, alicePW)
	if r := c.get("/logout"); r.StatusCode == http.StatusSeeOther {
		t.Errorf("GET /logout answered %d", r.StatusCode)
	}
	if r := c.get("/cases"); r.StatusCode != http.StatusOK {
		t.Errorf("a GET logged the user out: %d", r.StatusCode)
	}
}

func TestSessionTokenRotatesAtLogin(t *testing.T) {
	e := newEnv(t)
	c := e.loggedIn(e.alice.Email, alicePW)
	c.post("/logout", nil) // leaves an anonymous session carrying the flash
	before := sessionCookie(t, c)
	if before == "" {
		t.Fatal("no anonymous session before login")
	}
	c.login(e.alice.Email, alicePW)
	after := sessionCookie(t, c)
	if after == "" || after == before {
		t.Errorf("token not rotated at login: %q -> %q", before, after)
	}
	if n := e.count(`SELECT count(*) FROM sessions WHERE token = $1`, before); n != 0 {
		t.Errorf("pre-login session still stored")
	}
}

func sessionCookie(t *testing.T, c *client) string {
	t.Helper()
	u, _ := url.Parse(c.e.ts.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if strings.HasSuffix(ck.Name, "casebook") {
			return ck.Value
		}
	}
	return ""
}

func TestInsecureCookies(t *testing.T) {
	e := newEnv(t, func(o *web.Options) { o.InsecureCookies = true })
	r := e.client().login(e.alice.Email, alicePW)
	set := ""
	for _, c := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "casebook=") {
			set = c
		}
	}
	if set == "" || strings.Contains(set, "Secure") || !strings.Contains(set, "HttpOnly") {
		t.Errorf("Set-Cookie = %q, want casebook=… HttpOnly without Secure", set)
	}
}

// Every refused login looks the same. Each costs exactly one hash, except those the
// lock refuses, which cost none.
func TestLoginRefusalsAreIdentical(t *testing.T) {
	e := newEnv(t, func(o *web.Options) { o.Account = web.Throttle{Free: 2, Window: time.Hour, Max: time.Hour} })
	// Lock bob: three wrong passwords.
	for range 3 {
		e.client().login(e.bob.Email, "not bob's password at all")
	}
	// Addresses of one length, so that the pages' lengths match too.
	carol := e.addUser(postgres.NewUser{OrgID: &e.org1.ID, Email: "carol@acme.test", Name: "Carol"}, alicePW)
	e.disable(carol)
	cases := []struct {
		name, email, pw string
		hashes          uint64
	}{
		{"unknown user", "nobod@acme.test", alicePW, 1},
		{"wrong password", e.alice.Email, "not alice's password at all", 1},
		{"locked account, right password", e.bob.Email, bobPW, 0},
		{"empty password", e.alice.Email, "", 1},
		{"disabled account, right password", carol.Email, alicePW, 1},
	}
	type answer struct {
		Status int
		Header http.Header
		Body   string
	}
	var answers []answer
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.hasher.Hashes()
			r := e.client().login(tc.email, tc.pw)
			if got := e.hasher.Hashes() - before; got != tc.hashes {
				t.Errorf("login cost %d hashes, want %d", got, tc.hashes)
			}
			h := r.Header.Clone()
			h.Del("Date")
			answers = append(answers, answer{r.StatusCode, h, strings.ReplaceAll(r.body, tc.email, "EMAIL")})
		})
	}
	for i := 1; i < len(answers); i++ {
		if diff := cmp.Diff(answers[0], answers[i]); diff != "" {
			t.Errorf("%s and %s differ (-+):\n%s", cases[0].name, cases[i].name, diff)
		}
	}
	if answers[0].Status != http.StatusOK || !strings.Contains(answers[0].Body, "not right") {
		t.Errorf("refusal = %d %q", answers[0].Status, answers[0].Body)
	}
	var outcomes []string
	for _, a := range e.audits("login") {
		outcomes = append(outcomes, a.Outcome)
	}
	want := []string{"failure", "failure", "failure", "unknown_user", "failure", "locked", "failure", "disabled"}
	if diff := cmp.Diff(want, outcomes); diff != "" {
		t.Errorf("login audit outcomes (-want +got):\n%s", diff)
	}
}

func TestThrottle(t *testing.T) {
	t.Run("account, across instances, unknown users too", func(t *testing.T) {
		e := newEnv(t, func(o *web.Options) {
			o.Account = web.Throttle{Free: 2, Window: time.Hour, Max: time.Hour}
			o.LockMemory = -1 // the test ends the lock by hand
		})
		for range 3 {
			e.client().login(e.alice.Email, "wrong wrong wrong wrong")
		}
		if r := e.client().login(e.alice.Email, alicePW); r.StatusCode != http.StatusOK {
			t.Errorf("right password while locked: %d, want the refusal page", r.StatusCode)
		}
		// A second instance on the same database sees the same lock.
		other, err := web.New(pgStore{e.st, e.failAudit}, e.svc, e.blobs, e.opt)
		if err != nil {
			t.Fatal(err)
		}
		ts2 := newTLSServer(t, other.Handler())
		c2 := e.client()
		req, _ := http.NewRequest("POST", ts2.URL+"/login", strings.NewReader(url.Values{"email": {e.alice.Email}, "password": {alicePW}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		c2.Transport = ts2.Client().Transport
		if r := c2.do(req); r.StatusCode != http.StatusOK {
			t.Errorf("second instance let a locked account in: %d", r.StatusCode)
		}
		for range 3 {
			e.client().login("ghost@acme.test", "wrong wrong wrong wrong")
		}
		if n := e.count(`SELECT count(*) FROM login_throttle WHERE key = 'account:ghost@acme.test' AND locked_until > now()`); n != 1 {
			t.Errorf("unknown user not throttled")
		}
		// The lock ends: then the right password works and clears the count.
		e.st.DB().Exec(`UPDATE login_throttle SET locked_until = now() - interval '1 second'`)
		if r := e.client().login(e.alice.Email, alicePW); r.StatusCode != http.StatusSeeOther {
			t.Errorf("after the lock: %d", r.StatusCode)
		}
		if n := e.count(`SELECT count(*) FROM login_throttle WHERE key = 'account:alice@acme.test'`); n != 0 {
			t.Errorf("success did not clear the failures")
		}
	})
	t.Run("per address on top", func(t *testing.T) {
		e := newEnv(t, func(o *web.Options) { o.IP = web.Throttle{Free: 3, Window: time.Hour, Max: time.Hour} })
		for i := range 4 {
			e.client().login("user"+string(rune('a'+i))+"@acme.test", "wrong wrong wrong wrong")
		}
		if r := e.client().login(e.alice.Email, alicePW); r.StatusCode != http.StatusOK {
			t.Errorf("address over its budget still logs in: %d", r.StatusCode)
		}
	})
}

func TestRehashOnLogin(t *testing.T) {
	e := newEnv(t)
	old := password.NewHasher(password.Params{Memory: 32, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}, 1)
	h := must(old.Hash(context.Background(), alicePW))
	if _, err := e.st.ChangePassword(context.Background(), e.alice.ID, h, ""); err != nil {
		t.Fatal(err)
	}
	e.loggedIn(e.alice.Email, alicePW)
	got, _, _ := e.st.PasswordHash(context.Background(), e.alice.ID)
	if !strings.Contains(got, "$m=64,t=1,p=1$") {
		t.Errorf("hash not upgraded to the current parameters: %s", got)
	}
	e.loggedIn(e.alice.Email, alicePW)
}

func TestReadsRoutes(t *testing.T) {
	e := newEnv(t)
	routes := e.srv.Routes()
	for _, want := range []string{"GET /login", "POST /login", "POST /logout", "GET /cases", "GET /cases/{ref}",
		"POST /cases/{ref}/attachments", "GET /attachments/{id}", "GET /password", "POST /password",
		"GET /password/forgot", "POST /password/forgot"} {
		if !slices.Contains(routes, want) {
			t.Errorf("route %q missing from %q", want, routes)
		}
	}
}
