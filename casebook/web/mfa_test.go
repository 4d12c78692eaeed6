package web_test

import (
	"bytes"
	pngimg "image/png"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook/web"
)

func loginOutcomes(e *env) []string {
	var out []string
	for _, a := range e.audits("login") {
		out = append(out, a.Outcome)
	}
	return out
}

// TestMFAEnrolmentAndLogin: a staff member is sent to enrolment right after the
// password and reaches nothing else before it; the QR code is a PNG from the page's
// own origin; the secret is sealed in the database; the next login asks for a code.
func TestMFAEnrolmentAndLogin(t *testing.T) {
	e := newEnv(t, func(o *web.Options) { o.MFAKey = []byte("a key of at least thirty-two bytes") })
	c := e.client()
	r := c.login(e.sam.Email, samPW)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/mfa/enrol" {
		t.Fatalf("staff login without a factor: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if n := e.count(`SELECT count(*) FROM sessions WHERE user_id = $1`, e.sam.ID); n != 0 {
		t.Errorf("a session is tagged with the user before the second factor")
	}
	if r := c.get("/login/code"); r.Header.Get("Location") != "/mfa/enrol" {
		t.Errorf("code page without a factor: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	page := c.get("/mfa/enrol")
	checkHeaders(t, "enrolment page", page.Header)
	if again := c.get("/mfa/enrol"); secretRE.FindString(again.body) != secretRE.FindString(page.body) {
		t.Errorf("reloading the enrolment page changed the secret")
	}
	qr := c.get("/mfa/enrol/qr.png")
	checkHeaders(t, "QR code", qr.Header)
	if qr.StatusCode != http.StatusOK || qr.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("QR code: %d %s", qr.StatusCode, qr.Header.Get("Content-Type"))
	}
	if img, err := pngimg.Decode(strings.NewReader(qr.body)); err != nil || img.Bounds().Dx() < 200 {
		t.Errorf("QR code is not a usable PNG: %v", err)
	}
	if r := c.post("/mfa/enrol", url.Values{"code": {"000000"}}); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, `role="alert"`) {
		t.Errorf("wrong confirmation code: %d", r.StatusCode)
	}
	secret, codes, r := c.enrol(e.sam.Email)
	if !strings.Contains(r.body, `href="/cases"`) {
		t.Errorf("recovery page does not lead on to the cases")
	}
	var stored string
	must(0, e.st.DB().Get(&stored, `SELECT secret FROM mfa_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL`, e.sam.ID))
	if !strings.HasPrefix(stored, "aes-gcm:") || strings.Contains(stored, secret) {
		t.Errorf("the database holds the secret readably: %q", stored)
	}
	var hashes []string
	must(0, e.st.DB().Select(&hashes, `SELECT code_hash FROM mfa_recovery_codes WHERE user_id = $1`, e.sam.ID))
	if len(hashes) != 10 || slices.ContainsFunc(hashes, func(h string) bool { return slices.Contains(codes, h) }) {
		t.Errorf("recovery codes stored: %d, or stored as they are", len(hashes))
	}
	if r := c.get("/cases"); r.StatusCode != http.StatusOK {
		t.Errorf("cases after enrolment: %d", r.StatusCode)
	}
	c.post("/logout", nil)

	c = e.client()
	if r := c.login(e.sam.Email, samPW); r.Header.Get("Location") != "/login/code" {
		t.Fatalf("login with a factor: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if r := c.get("/mfa/enrol"); r.Header.Get("Location") != "/login/code" {
		t.Errorf("enrolment over a confirmed factor: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if r := c.post("/login/code", url.Values{"code": {e.totpCode(e.sam.Email)}}); r.Header.Get("Location") != "/cases" {
		t.Fatalf("code: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if r := c.get("/cases"); r.StatusCode != http.StatusOK {
		t.Errorf("cases after the code: %d", r.StatusCode)
	}
	want := []string{"password_ok_enrol_pending", "success_enrolled", "password_ok_code_pending", "success_totp"}
	if diff := cmp.Diff(want, loginOutcomes(e)); diff != "" {
		t.Errorf("login audit (-want +got):\n%s", diff)
	}
	if n := len(e.audits("mfa_enrol")); n != 2 {
		t.Errorf("%d mfa_enrol audit rows, want a refusal and a success", n)
	}
}

// TestHalfLoggedInReachesNothing: with the password accepted and the code pending,
// every page that needs a login still sends the browser to the login page.
func TestHalfLoggedInReachesNothing(t *testing.T) {
	e := newEnv(t)
	e.loggedIn(e.sam.Email, samPW).post("/logout", nil) // enrols
	c := e.client()
	if r := c.login(e.sam.Email, samPW); r.Header.Get("Location") != "/login/code" {
		t.Fatalf("login: %s", r.Header.Get("Location"))
	}
	for _, route := range e.srv.Routes() {
		if publicRoutes[route] || strings.Contains(route, "/login/code") || strings.Contains(route, "/mfa/") {
			continue
		}
		r := c.do(e.request(t, route, nil))
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
			t.Errorf("half-logged-in %s: %d %s", route, r.StatusCode, r.Header.Get("Location"))
		}
	}
	if r := c.get("/login/code"); r.StatusCode != http.StatusOK {
		t.Errorf("the code page itself: %d", r.StatusCode)
	}
}

// TestMFACodeRules covers the bad input: a replayed code, codes of the previous and
// next window (accepted once), a reused recovery code. Each refusal gets the same
// page and an audit row that says which it was.
func TestMFACodeRules(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.login(e.sam.Email, samPW)
	secret, codes, _ := c.enrol(e.sam.Email)
	var enrolStep int64
	must(0, e.st.DB().Get(&enrolStep, `SELECT last_step FROM mfa_factors WHERE user_id = $1`, e.sam.ID))
	at := func(step int64) string { return totpAt(secret, time.Unix(step*30, 0)) }

	// try logs in with the password, then code, and returns where it led.
	try := func(code string) (int, string) {
		t.Helper()
		c := e.client()
		if r := c.login(e.sam.Email, samPW); r.Header.Get("Location") != "/login/code" {
			t.Fatalf("login: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		r := c.post("/login/code", url.Values{"code": {code}})
		if r.StatusCode == http.StatusOK && !strings.Contains(r.body, `id="code-problem"`) {
			t.Errorf("refusal page lacks its notice")
		}
		return r.StatusCode, r.Header.Get("Location")
	}
	now := time.Now().Unix() / 30
	steps := []struct {
		name    string
		code    string
		ok      bool
		outcome string
	}{
		{"the enrolment's own code, replayed", at(enrolStep), false, "code_replayed"},
		{"a wrong code", "123456x", false, "recovery_code_wrong"},
		{"the next window's code", at(now + 1), true, "success_totp"},
		{"the next window's code again", at(now + 1), false, "code_replayed"},
		{"the current code after the next one", at(now), false, "code_replayed"},
		{"a recovery code", codes[0], true, "success_recovery_code"},
		{"the same recovery code again", codes[0], false, "recovery_code_wrong"},
		{"a recovery code typed in capitals with spaces", strings.ToUpper(strings.ReplaceAll(codes[1], "-", " ")), true, "success_recovery_code"},
	}
	for _, s := range steps {
		n := len(e.audits("login"))
		status, loc := try(s.code)
		if s.ok != (status == http.StatusSeeOther && loc == "/cases") {
			t.Errorf("%s: %d %s, want ok=%v", s.name, status, loc, s.ok)
		}
		if rows := e.audits("login"); len(rows) != n+2 || rows[len(rows)-1].Outcome != s.outcome {
			t.Errorf("%s: audit %v, want %s", s.name, loginOutcomes(e)[n:], s.outcome)
		}
	}
	if n := e.count(`SELECT count(*) FROM mfa_recovery_codes WHERE user_id = $1`, e.sam.ID); n != 8 {
		t.Errorf("%d recovery codes left, want 8", n)
	}

	// The previous window's code, accepted once: start from a factor that has seen
	// nothing newer.
	must(e.st.DB().Exec(`UPDATE mfa_factors SET last_step = $2 WHERE user_id = $1`, e.sam.ID, now-2))
	if status, loc := try(at(now - 1)); loc != "/cases" {
		t.Errorf("the previous window's code: %d %s", status, loc)
	}
	if _, loc := try(at(now - 1)); loc == "/cases" {
		t.Errorf("the previous window's code worked twice")
	}
	if _, loc := try(at(now - 3)); loc == "/cases" {
		t.Errorf("a code two windows old worked")
	}
}

// TestMFAFloodThrottled: wrong codes spend the account's login budget like wrong
// passwords (the password's own attempt counts too until the login completes), so
// that once it is spent even the right code is refused; typing the (known) password
// again does not refill it.
func TestMFAFloodThrottled(t *testing.T) {
	e := newEnv(t, func(o *web.Options) { o.Account = web.Throttle{Free: 3, Window: time.Hour, Max: time.Hour} })
	e.loggedIn(e.sam.Email, samPW).post("/logout", nil)
	c := e.client()
	c.login(e.sam.Email, samPW)
	for i := range 4 {
		r := c.post("/login/code", url.Values{"code": {wrongTOTP(e, i)}})
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, `id="code-problem"`) {
			t.Fatalf("wrong code %d: %d", i, r.StatusCode)
		}
	}
	if r := c.post("/login/code", url.Values{"code": {e.totpCode(e.sam.Email)}}); r.StatusCode != http.StatusOK {
		t.Errorf("the right code after a flood: %d %s, want refused", r.StatusCode, r.Header.Get("Location"))
	}
	if r := e.client().login(e.sam.Email, samPW); r.StatusCode != http.StatusOK {
		t.Errorf("the password after a code flood: %d %s, want refused", r.StatusCode, r.Header.Get("Location"))
	}
	outcomes := loginOutcomes(e)
	if n := strings.Count(strings.Join(outcomes, " "), "code_wrong"); n != 3 || outcomes[len(outcomes)-2] != "locked" {
		t.Errorf("login audit: %v", outcomes)
	}
	var failures int
	must(0, e.st.DB().Get(&failures, `SELECT failures FROM login_throttle WHERE key = $1`, "account:"+e.sam.Email))
	if failures != 4 {
		t.Errorf("%d failures counted, want 4", failures)
	}
}

// wrongTOTP is a six-digit code outside sam's current window.
func wrongTOTP(e *env, i int) string {
	secret := e.secrets[e.sam.Email]
	now := time.Now()
	for k := i; ; k++ {
		code := strings.Repeat(string(rune('0'+k%10)), 6)
		if code != totpAt(secret, now) && code != totpAt(secret, now.Add(-30*time.Second)) && code != totpAt(secret, now.Add(30*time.Second)) {
			return code
		}
	}
}

// TestMFAPolicy: who is sent to enrolment, per --require-mfa; a user with a factor is
// always asked for it.
func TestMFAPolicy(t *testing.T) {
	cases := []struct {
		name       string
		policy     web.MFAPolicy
		staff, cus string
	}{
		{"default", "", "/mfa/enrol", "/cases"},
		{"staff", web.MFAStaff, "/mfa/enrol", "/cases"},
		{"all", web.MFAAll, "/mfa/enrol", "/mfa/enrol"},
		{"off", web.MFAOff, "/cases", "/cases"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(o *web.Options) { o.RequireMFA = c.policy })
			if loc := e.client().login(e.sam.Email, samPW).Header.Get("Location"); loc != c.staff {
				t.Errorf("staff: %s, want %s", loc, c.staff)
			}
			if loc := e.client().login(e.alice.Email, alicePW).Header.Get("Location"); loc != c.cus {
				t.Errorf("customer: %s, want %s", loc, c.cus)
			}
		})
	}
	t.Run("off, with a factor", func(t *testing.T) {
		e := newEnv(t)
		e.loggedIn(e.sam.Email, samPW)
		e.opt.RequireMFA = web.MFAOff
		srv := must(web.New(pgStore{e.st, e.failAudit}, e.svc, e.blobs, e.opt))
		e.ts = newTLSServer(t, srv.Handler())
		if loc := e.client().login(e.sam.Email, samPW).Header.Get("Location"); loc != "/login/code" {
			t.Errorf("a user with a factor under off: %s", loc)
		}
	})
}

// TestEnrolmentNotShared: two logins enrolling the same account at once (the owner
// and someone else holding the password) never see or confirm each other's secret.
func TestEnrolmentNotShared(t *testing.T) {
	e := newEnv(t)
	owner, other := e.client(), e.client()
	owner.login(e.sam.Email, samPW)
	other.login(e.sam.Email, samPW)
	first := secretRE.FindStringSubmatch(other.get("/mfa/enrol").body)[1]
	mine := secretRE.FindStringSubmatch(owner.get("/mfa/enrol").body)[1]
	again := secretRE.FindStringSubmatch(other.get("/mfa/enrol").body)[1]
	if mine == first || again == mine {
		t.Fatalf("secrets shown: other %s, owner %s, other again %s", first, mine, again)
	}
	// The owner's secret was replaced by the other login's reload; confirming it now
	// fails rather than confirming the other's.
	code := totpAt(strings.ReplaceAll(mine, " ", ""), time.Now())
	if r := owner.post("/mfa/enrol", url.Values{"code": {code}}); r.StatusCode == http.StatusOK {
		t.Errorf("a replaced enrolment was confirmed")
	}
	if n := e.count(`SELECT count(*) FROM mfa_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL`, e.sam.ID); n != 0 {
		t.Errorf("a factor was confirmed")
	}
	if bytes.Contains([]byte(owner.get("/mfa/enrol").body), []byte(again)) {
		t.Errorf("the owner was shown the other login's secret")
	}
}
