package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/postgresstore"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/web"
)

func TestUserAddMailsATemporaryPassword(t *testing.T) {
	c := newCLI(t)
	c.json("org", "add", "Acme Health")
	u := c.json("user", "add", "--org", "Acme Health", "--email", "alice@acme.test", "--name", "Alice")
	code, _ := u["temporary_password"].(string)

	st, err := postgres.Open(context.Background(), c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var data string
	if err := st.DB().Get(&data, `SELECT data FROM outbox WHERE kind = 'temporary_password' AND recipient = 'alice@acme.test'`); err != nil {
		t.Fatalf("no temporary_password mail: %v", err)
	}
	var m map[string]string
	json.Unmarshal([]byte(data), &m)
	exp, err := time.Parse(time.RFC3339, m["expires_at"])
	if m["password"] != code || m["reason"] != "new_account" || m["name"] != "Alice" || err != nil || time.Until(exp) < 6*24*time.Hour {
		t.Errorf("mail data = %v", m)
	}
	hash, mustChange, err := st.PasswordHash(context.Background(), int64(u["id"].(float64)))
	if err != nil || hash != "" || mustChange {
		t.Errorf("new account has a password hash %q (must change %v): the code is its only way in", hash, mustChange)
	}

	// The code logs in once and leads to choosing a password.
	srv, err := web.New(st, nil, nil, web.Options{Refs: casebook.DefaultRefFormat,
		Sessions: postgresstore.NewWithCleanupInterval(st.DB().DB, 0)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv.Handler())
	defer ts.Close()
	hc := ts.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r, err := hc.PostForm(ts.URL+"/login", url.Values{"email": {"alice@acme.test"}, "password": {code}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/password" {
		t.Errorf("login with the new account's code: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestUserResetPasswordAndAudit(t *testing.T) {
	c := newCLI(t)
	c.json("org", "add", "Acme Health")
	c.json("user", "add", "--org", "Acme Health", "--email", "alice@acme.test")
	first := c.json("user", "reset-password", "alice@acme.test")
	second := c.json("user", "reset-password", "ALICE@acme.test")
	if first["temporary_password"] == second["temporary_password"] || len(second["temporary_password"].(string)) < 20 {
		t.Errorf("reset-password output: %v then %v", first, second)
	}
	if code, _, errOut := c.run("user", "reset-password", "nobody@acme.test"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("unknown user: exit %d %q", code, errOut)
	}

	code, out, errOut := c.run("audit", "--user", "alice@acme.test", "--verify")
	if code != 0 || strings.Count(out, "reset_request") != 3 || !strings.Contains(out, "audit chain intact") {
		t.Errorf("audit --user: exit %d\n%s%s", code, out, errOut)
	}
	// --case selects the case and its attachments, nothing else.
	st, _ := postgres.Open(context.Background(), c.url)
	defer st.Close()
	for _, obj := range []string{"CASE-000001", "CASE-000001/attachment/3", "CASE-000010", "CASE-0000011"} {
		st.Audit(context.Background(), casebook.AuditEntry{Action: "download", Object: obj, Outcome: "success"})
	}
	code, out, _ = c.run("audit", "--case", "case-1", "--json")
	if code != 0 || strings.Count(out, "\n") != 2 || strings.Contains(out, "CASE-000010") {
		t.Errorf("audit --case: exit %d\n%s", code, out)
	}
}
