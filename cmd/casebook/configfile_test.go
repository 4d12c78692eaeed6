package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfigFile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{
			name: "systemd EnvironmentFile style",
			in: "# casebook\n\nCASEBOOK_DATABASE_URL=postgres://db/casebook\n  CASEBOOK_ADMIN = 127.0.0.1:9090  \n" +
				"export CASEBOOK_LOG_LEVEL=debug\nCASEBOOK_CASE_PREFIX=\"TICKET\"\nCASEBOOK_MAIL_DOMAIN='x.example'\nCASEBOOK_DATA_DIR=\n",
			want: map[string]string{
				"CASEBOOK_DATABASE_URL": "postgres://db/casebook",
				"CASEBOOK_ADMIN":        "127.0.0.1:9090",
				"CASEBOOK_LOG_LEVEL":    "debug",
				"CASEBOOK_CASE_PREFIX":  "TICKET",
				"CASEBOOK_MAIL_DOMAIN":  "x.example",
				"CASEBOOK_DATA_DIR":     "",
			},
		},
		{name: "value keeps inner equals signs", in: "CASEBOOK_TOKEN_KEY=a=b=c\n", want: map[string]string{"CASEBOOK_TOKEN_KEY": "a=b=c"}},
		{name: "no equals sign", in: "CASEBOOK_ADMIN\n", wantErr: "line 1: want CASEBOOK_NAME=value"},
		{name: "foreign name", in: "\nPGPASSWORD=hunter2\n", wantErr: "line 2: want CASEBOOK_NAME=value"},
		{name: "lower case", in: "casebook_admin=x\n", wantErr: "line 1"},
		{name: "repeated", in: "CASEBOOK_ADMIN=a\nCASEBOOK_ADMIN=b\n", wantErr: "line 2: CASEBOOK_ADMIN is set twice"},
		{name: "nested file", in: "CASEBOOK_CONFIG=/etc/other\n", wantErr: "line 1: CASEBOOK_CONFIG cannot name another file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfigFile(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error %q echoes the line's value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseConfigFile(f *testing.F) {
	f.Add("CASEBOOK_ADMIN=127.0.0.1:9090\n# c\nexport CASEBOOK_X='y'\n")
	f.Fuzz(func(t *testing.T, in string) {
		m, err := parseConfigFile(strings.NewReader(in))
		if err != nil {
			return
		}
		for k := range m {
			if !validSettingName(k) {
				t.Errorf("accepted name %q", k)
			}
		}
	})
}

// writeConfig writes a config file for a test.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "casebook.env")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrecedence(t *testing.T) {
	file := writeConfig(t, "CASEBOOK_CASE_PREFIX=FILE\nCASEBOOK_MAIL_DOMAIN=file.example\nCASEBOOK_LOG_LEVEL=warn\n"+
		"CASEBOOK_TOKEN_KEY_FILE="+writeConfig(t, "k3y-from-a-file-0123456789abcdef0123\n")+"\n")
	env := map[string]string{"CASEBOOK_MAIL_DOMAIN": "env.example", "CASEBOOK_LOG_LEVEL": "error", "CASEBOOK_CONFIG": file}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	var c Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.commonFlags(fs)
	if err := fs.Parse([]string{"--log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	l, err := configLookup(fs, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs, l); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{"prefix": c.CasePrefix, "domain": c.MailDomain, "level": c.LogLevel, "data": c.DataDir, "key": c.TokenKey}
	want := map[string]string{
		"prefix": "FILE",                                 // file over default
		"domain": "env.example",                          // environment over file
		"level":  "debug",                                // flag over environment
		"data":   "./casebook-data",                      // default
		"key":    "k3y-from-a-file-0123456789abcdef0123", // secret from a _FILE named in the file
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestConfigFileUnknownSetting(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"config", "--config", writeConfig(t, "CASEBOOK_DATABSE_URL=postgres://x\n")}, io.Discard, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "unknown setting(s) CASEBOOK_DATABSE_URL") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// TestConfigCommandMasksSecrets prints the effective config with secrets from every
// source and checks none of them shows.
func TestConfigCommandMasksSecrets(t *testing.T) {
	const key = "S3cret-token-key-0123456789abcdefghij"
	const dbpw = "db-pa55word"
	file := writeConfig(t, "CASEBOOK_TOKEN_KEY="+key+"\nCASEBOOK_CASE_PREFIX=TICK\n")
	t.Setenv("CASEBOOK_DATABASE_URL", "postgres://casebook:"+dbpw+"@db.internal:5432/casebook?sslmode=disable")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"config", "--json", "--config", file, "--admin", "127.0.0.1:9999"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, secret := range []string{key, dbpw} {
		if strings.Contains(out, secret) {
			t.Errorf("config output shows a secret:\n%s", out)
		}
	}
	got := map[string]setting{}
	dec := json.NewDecoder(&stdout)
	for dec.More() {
		var s setting
		if err := dec.Decode(&s); err != nil {
			t.Fatal(err)
		}
		got[s.Name] = s
	}
	want := map[string]setting{
		"CASEBOOK_TOKEN_KEY":    {Name: "CASEBOOK_TOKEN_KEY", Value: masked, Source: "config file"},
		"CASEBOOK_CASE_PREFIX":  {Name: "CASEBOOK_CASE_PREFIX", Value: "TICK", Source: "config file"},
		"CASEBOOK_DATABASE_URL": {Name: "CASEBOOK_DATABASE_URL", Value: "postgres://casebook:xxxxx@db.internal:5432/casebook?sslmode=disable", Source: "environment"},
		"CASEBOOK_ADMIN":        {Name: "CASEBOOK_ADMIN", Value: "127.0.0.1:9999", Source: "command line"},
		"CASEBOOK_DATA_DIR":     {Name: "CASEBOOK_DATA_DIR", Value: "./casebook-data", Source: "default"},
	}
	for k, w := range want {
		if diff := cmp.Diff(w, got[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
}

func TestMaskValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://casebook@db:5432/cb?password=s3cret&sslmode=require", "postgres://casebook@db:5432/cb?password=xxxxx&sslmode=require"},
		{"postgres://casebook:s3cret@db/cb?sslpassword=k3y", "postgres://casebook:xxxxx@db/cb?sslpassword=xxxxx"},
		{"host=db user=casebook password=s3cret dbname=cb", "host=db user=casebook password=" + masked + " dbname=cb"},
		{"host=db password = 's3 cret\\' x' dbname=cb", "host=db password=" + masked + " dbname=cb"},
		{"imaps://support%40example.com@mail.test/INBOX?password_file=/run/secrets/imap", "imaps://support%40example.com@mail.test/INBOX?password_file=/run/secrets/imap"},
		{"host=db sslmode=disable", "host=db sslmode=disable"},
	} {
		if got := maskValue("database-url", tc.in); got != tc.want {
			t.Errorf("maskValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestREADMEConfigExample checks the complete config file the README shows parses and
// names only settings casebook knows.
func TestREADMEConfigExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "A complete `/etc/casebook/casebook.env`:\n\n```sh\n")
	if !ok {
		t.Fatal("README has no config file example")
	}
	example, _, _ := strings.Cut(rest, "```")
	m, err := parseConfigFile(strings.NewReader(example))
	if err != nil {
		t.Fatal(err)
	}
	known := knownSettings()
	for k := range m {
		if !known[k] {
			t.Errorf("README example sets %s, which no command knows", k)
		}
	}
	if len(m) < 10 {
		t.Errorf("README example sets only %d settings", len(m))
	}
}
