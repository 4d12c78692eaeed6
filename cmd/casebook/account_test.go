package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alexedwards/scs/postgresstore"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/password"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/web"
)

// page is a web page over the CLI test's database, as serve runs it.
func page(t *testing.T, st *postgres.Store) *httptest.Server {
	t.Helper()
	srv, err := web.New(st, nil, nil, web.Options{Refs: casebook.DefaultRefFormat,
		Hasher:   password.NewHasher(password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}, 2),
		Sessions: postgresstore.NewWithCleanupInterval(st.DB().DB, 0)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// browser logs in to ts and returns a client holding the session, or nil when refused.
func browser(t *testing.T, ts *httptest.Server, email, pw string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Transport: ts.Client().Transport, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := hc.PostForm(ts.URL+"/login", url.Values{"email": {email}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther {
		return nil
	}
	return hc
}

func loggedIn(t *testing.T, ts *httptest.Server, hc *http.Client) bool {
	t.Helper()
	r, err := hc.Get(ts.URL + "/cases")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode == http.StatusOK
}

func TestUserLifecycleCommands(t *testing.T) {
	c := newCLI(t)
	c.json("org", "add", "Acme Health")
	c.json("user", "add", "--org", "Acme Health", "--email", "alice@acme.test")
	ctx := context.Background()
	st, err := postgres.Open(ctx, c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const pw = "violet staple river lantern"
	h := must(password.NewHasher(password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}, 1).Hash(ctx, pw))
	u := must(st.UserByEmail(ctx, "alice@acme.test"))
	if err := st.SetPassword(ctx, u.ID, h, false); err != nil {
		t.Fatal(err)
	}
	ts := page(t, st)
	one, two := browser(t, ts, u.Email, pw), browser(t, ts, u.Email, pw)
	if one == nil || two == nil {
		t.Fatal("login refused")
	}

	code, out, errOut := c.run("user", "sessions", "alice@acme.test", "--json")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"ip":"127.0.0.1"`) || strings.Contains(out, "token") {
		t.Errorf("user sessions: exit %d %s%s", code, out, errOut)
	}
	if r := c.json("user", "revoke", "alice@acme.test"); r["sessions_ended"] != float64(2) {
		t.Errorf("user revoke = %v", r)
	}
	if loggedIn(t, ts, one) || loggedIn(t, ts, two) {
		t.Error("a revoked session still works")
	}
	if _, out, _ := c.run("user", "sessions", "alice@acme.test"); !strings.Contains(out, "no session") {
		t.Errorf("after revoke: %q", out)
	}

	live := browser(t, ts, u.Email, pw)
	if r := c.json("user", "disable", "alice@acme.test"); r["disabled"] != true || r["sessions_ended"] != float64(1) {
		t.Errorf("user disable = %v", r)
	}
	if loggedIn(t, ts, live) {
		t.Error("a disabled user's session still works")
	}
	if browser(t, ts, u.Email, pw) != nil {
		t.Error("a disabled user logs in")
	}
	if r := c.json("user", "enable", "alice@acme.test"); r["disabled"] != false {
		t.Errorf("user enable = %v", r)
	}
	live = browser(t, ts, u.Email, pw)
	if live == nil {
		t.Fatal("an enabled user cannot log in")
	}

	// Staff's reset voids the old password and ends every session.
	reset := c.json("user", "reset-password", "alice@acme.test")
	if reset["sessions_ended"] != float64(1) || loggedIn(t, ts, live) {
		t.Errorf("reset-password left the session: %v", reset)
	}
	if browser(t, ts, u.Email, pw) != nil {
		t.Error("the old password works after a staff reset")
	}
	if browser(t, ts, u.Email, reset["temporary_password"].(string)) == nil {
		t.Error("the temporary password does not work")
	}

	// Strangers lock the account; unlock lifts it.
	for range 7 {
		browser(t, ts, u.Email, "guessing guessing guessing")
	}
	if n := must(st.DB().Query(`SELECT 1 FROM login_throttle WHERE key = 'account:alice@acme.test' AND locked_until > now()`)); !n.Next() {
		t.Fatal("not locked")
	} else {
		n.Close()
	}
	if r := c.json("user", "unlock", "alice@acme.test"); r["cleared"] != float64(1) {
		t.Errorf("user unlock = %v", r)
	}

	for _, args := range [][]string{{"user", "disable"}, {"user", "sessions", "a@x.test", "b@x.test"}} {
		if code, _, _ := c.run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, _, errOut := c.run("user", "disable", "nobody@acme.test"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("unknown user: exit %d %q", code, errOut)
	}
	var actions []string
	for _, e := range must(st.AuditLog(ctx, postgres.AuditFilter{UserID: u.ID})) {
		if e.IP == "cli" {
			actions = append(actions, e.Action)
			if e.OSUser == "" {
				t.Errorf("%s row lacks the OS user", e.Action)
			}
		}
	}
	for _, want := range []string{"sessions_view", "sessions_revoke", "user_disable", "user_enable", "reset_request", "user_unlock"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("no %s audit row in %v", want, actions)
		}
	}
}

func TestAuditKeyAndAnchor(t *testing.T) {
	c := newCLI(t)
	key := filepath.Join(t.TempDir(), "audit-key")
	if err := os.WriteFile(key, []byte("k3y-that-is-long-enough-for-hmac-sha256\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CASEBOOK_AUDIT_KEY_FILE", key)
	c.json("org", "add", "Acme Health")
	c.json("user", "add", "--staff", "--email", "sam@support.test")
	c.json("user", "add", "--org", "Acme Health", "--email", "alice@acme.test")
	c.json("case", "open", "--org", "Acme Health", "--requester", "alice@acme.test", "--owner", "sam@support.test", "--subject", "Lab results")
	c.json("case", "show", "CASE-000001")

	code, out, errOut := c.run("audit", "anchor", "--json")
	var raw map[string]json.RawMessage
	if code != 0 || json.Unmarshal([]byte(out), &raw) != nil || len(raw) != 2 || raw["id"] == nil || raw["hash"] == nil {
		t.Fatalf("audit anchor --json: exit %d %q %s", code, out, errOut)
	}
	var an postgres.AuditAnchor
	json.Unmarshal([]byte(out), &an)
	if code, out, errOut := c.run("audit", "--verify", "--anchor", an.String()); code != 0 || !strings.Contains(out, "audit chain intact") ||
		!strings.Contains(out, "case_view") || !strings.Contains(out, "CASE-000001") {
		t.Errorf("verify with anchor: exit %d\n%s%s", code, out, errOut)
	}

	st, err := postgres.Open(context.Background(), c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows := must(st.AuditLog(context.Background(), postgres.AuditFilter{}))
	for _, e := range rows {
		if e.ChainVersion != 2 {
			t.Errorf("row %d is unkeyed", e.ID)
		}
		if (e.Action == "case_view" || e.Action == "audit_read") && (e.OSUser == "" || e.IP != "cli") {
			t.Errorf("staff read %s without its OS user: %+v", e.Action, e)
		}
	}

	// Rows deleted from the end: the anchor is gone.
	st.DB().MustExec(`DELETE FROM audit_log WHERE id >= $1`, an.ID-1)
	if code, _, errOut := c.run("audit", "--verify", "--anchor", an.String()); code != 1 || !strings.Contains(errOut, "deleted") {
		t.Errorf("deleted tail rows: exit %d %q", code, errOut)
	}
	// Without the key, keyed rows can be neither checked nor appended to.
	t.Setenv("CASEBOOK_AUDIT_KEY_FILE", "")
	if code, _, errOut := c.run("audit", "--verify"); code != 1 || !strings.Contains(errOut, "audit-key-file") {
		t.Errorf("verify without the key: exit %d %q", code, errOut)
	}
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("short"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"audit", "--verify", "--anchor", "12"}, 2, "ID:HASH"},
		{[]string{"audit", "--anchor", an.String()}, 2, "--verify"},
		{[]string{"audit", "anchor", "--audit-key-file", short}, 1, "at least 32"},
		{[]string{"audit", "anchor", "--audit-key-file", filepath.Join(t.TempDir(), "missing")}, 1, "audit-key-file"},
	} {
		if code, _, errOut := c.run(tc.args...); code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d %q, want %d mentioning %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
