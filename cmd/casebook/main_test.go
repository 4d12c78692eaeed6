package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
	"github.com/casebookhq/casebook/ingest/senderauth/dnstest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// cli runs casebook in-process against the test's database and returns exit code,
// stdout and stderr.
type cli struct {
	t   *testing.T
	url string
	dir string
}

func newCLI(t *testing.T) *cli {
	// DKIM and DMARC lookups go to a server of the test's own, never the internet.
	t.Setenv("CASEBOOK_DNS_RESOLVER", dnstest.Start(t).Addr)
	c := &cli{t: t, url: pgtest.URL(t), dir: t.TempDir()}
	return c
}

func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	if !slices.Contains(args, "--database-url") {
		args = append(args, "--database-url", c.url)
	}
	args = append(args, "--data-dir", c.dir)
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func (c *cli) json(args ...string) map[string]any {
	c.t.Helper()
	code, out, errOut := c.run(append(args, "--json")...)
	if code != 0 {
		c.t.Fatalf("casebook %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		c.t.Fatalf("casebook %s: output is not one JSON object: %v\n%s", strings.Join(args, " "), err, out)
	}
	return m
}

func TestAdminFlow(t *testing.T) {
	c := newCLI(t)
	c.json("org", "add", "Acme Health", "--domain", "acme.test")
	u := c.json("user", "add", "--org", "acme health", "--email", "alice@acme.test", "--name", "Alice")
	if pw, _ := u["temporary_password"].(string); len(pw) < 20 {
		t.Errorf("temporary_password = %q", pw)
	}
	c.json("user", "add", "--staff", "--email", "sam@support.test")
	opened := c.json("case", "open", "--org", "Acme Health", "--requester", "alice@acme.test", "--owner", "sam@support.test", "--subject", "Lab results")
	if opened["number"] != "CASE-000001" {
		t.Fatalf("number = %v", opened["number"])
	}
	code, out, _ := c.run("case", "list", "--json", "--status", "open")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"number":"CASE-000001"`) {
		t.Errorf("case list: %d %q", code, out)
	}
	shown := c.json("case", "show", "case-1")
	if shown["subject"] != "Lab results" || shown["status"] != "open" {
		t.Errorf("case show = %v", shown)
	}
	closed := c.json("case", "close", "CASE-000001")
	if closed["status"] != "closed" {
		t.Errorf("case close = %v", closed)
	}
	if code, _, errOut := c.run("case", "resolve", "CASE-000001"); code != 1 || !strings.Contains(errOut, "the case is closed") {
		t.Errorf("resolving a closed case: exit %d, %s", code, errOut)
	}
	if reopened := c.json("case", "reopen", "CASE-000001"); reopened["status"] != "open" {
		t.Errorf("case reopen = %v", reopened)
	}
	b := c.json("bind", "slack", "C123", "--org", "Acme Health", "--team", "T1")
	if diff := cmp.Diff(map[string]any{"platform": "slack", "workspace": "T1", "channel": "C123", "org_id": float64(1)}, b); diff != "" {
		t.Errorf("bind (-want +got):\n%s", diff)
	}
}

func TestAdminBadInput(t *testing.T) {
	c := newCLI(t)
	c.json("org", "add", "Acme")
	c.json("user", "add", "--org", "Acme", "--email", "a@acme.test")
	c.json("user", "add", "--staff", "--email", "s@support.test")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown org", []string{"user", "add", "--org", "Nope", "--email", "x@y.test"}, 1, "organisation not found"},
		{"duplicate org", []string{"org", "add", "ACME"}, 1, "already exists"},
		{"duplicate email", []string{"user", "add", "--org", "Acme", "--email", "A@acme.test"}, 1, "already registered"},
		{"bad email", []string{"user", "add", "--org", "Acme", "--email", "not an address"}, 1, "not an email address"},
		{"unknown case", []string{"case", "show", "CASE-000404"}, 1, "case not found"},
		{"not a case", []string{"case", "show", "SHOWCASE-1"}, 1, "not a case reference"},
		{"owner not staff", []string{"case", "open", "--org", "Acme", "--requester", "a@acme.test", "--owner", "a@acme.test", "--subject", "x"}, 1, "owner must be staff"},
		{"missing flags", []string{"case", "open", "--org", "Acme"}, 2, "required"},
		{"unknown platform", []string{"bind", "teams", "C1", "--org", "Acme"}, 2, "slack or discord"},
		{"unknown command", []string{"frobnicate"}, 2, "usage"},
		{"database down", []string{"org", "list", "--database-url", "postgres://postgres@127.0.0.1:1/x?sslmode=disable"}, 1, "cannot reach PostgreSQL at 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := c.run(tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errOut, tt.code, tt.want)
			}
			if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
				t.Errorf("stack trace shown: %s", errOut)
			}
		})
	}
	code, out, _ := c.run("case", "list", "--json")
	if code != 0 || out != "" {
		t.Errorf("refusals left cases behind: %q", out)
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"CASEBOOK_DATA_DIR":     "/from/env",
		"CASEBOOK_DATABASE_URL": "postgres://env",
		"CASEBOOK_CASE_PREFIX":  "TKT",
	}
	var cfg Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.commonFlags(fs)
	if err := fs.Parse([]string{"--data-dir", "/from/flag"}); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/from/flag" || cfg.DatabaseURL != "postgres://env" || cfg.CasePrefix != "TKT" {
		t.Errorf("config = %+v: flags must win over variables, variables over defaults", cfg)
	}
}
