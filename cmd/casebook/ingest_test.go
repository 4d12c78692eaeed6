package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func writeMail(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "\n", "\r\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// jsonLines runs a command with --json and decodes one object per line.
func (c *cli) jsonLines(args ...string) []map[string]any {
	c.t.Helper()
	code, out, errOut := c.run(append(args, "--json")...)
	if code != 0 {
		c.t.Fatalf("casebook %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	var rows []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			c.t.Fatalf("line %q: %v", line, err)
		}
		rows = append(rows, m)
	}
	return rows
}

// caseAttachments counts the files on a case.
func (c *cli) caseAttachments(ref string) int {
	c.t.Helper()
	as, _ := c.json("case", "show", ref)["attachments"].([]any)
	return len(as)
}

func TestIngestAndQuarantine(t *testing.T) {
	t.Setenv("CASEBOOK_TRUSTED_AUTHSERV_ID", "mx.support.test")
	c := newCLI(t)
	c.json("org", "add", "Acme Health", "--domain", "acme.test")
	c.json("user", "add", "--org", "Acme Health", "--email", "alice@acme.test")
	c.json("user", "add", "--staff", "--email", "sam@support.test")
	c.json("case", "open", "--org", "Acme Health", "--requester", "alice@acme.test", "--owner", "sam@support.test", "--subject", "Lab results")

	dir := t.TempDir()
	reply := writeMail(t, dir, "reply.eml", `From: Alice <alice@acme.test>
To: support@support.test
Authentication-Results: mx.support.test; dkim=pass header.d=acme.test; dmarc=pass header.from=acme.test
Subject: Re: [CASE-000001] Lab results
Message-ID: <reply-1@acme.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain

Here is the scan.
--b
Content-Type: application/pdf; name="scan.pdf"
Content-Disposition: attachment; filename="scan.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJSVFT0YK
--b--
`)
	stranger := writeMail(t, dir, "stranger.eml", `From: mallory@evil.test
To: support@support.test
Subject: CASE-000001
Message-ID: <s-1@evil.test>

let me in
`)
	ooo := writeMail(t, dir, "ooo.eml", `From: alice@acme.test
To: support@support.test
Subject: Out of office: CASE-000001
Auto-Submitted: auto-replied
Message-ID: <ooo-1@acme.test>

away
`)

	outcomes := func(rows []map[string]any) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r["outcome"].(string))
		}
		return out
	}
	keys := []string{"attachments", "case", "file", "from", "matched_by", "message_id", "outcome", "reason", "reason_code", "sender_auth", "subject"}

	dry := c.jsonLines("ingest", "--dry-run", reply, stranger, ooo)
	if got := outcomes(dry); !slices.Equal(got, []string{"add", "quarantine", "ignore"}) {
		t.Fatalf("dry-run outcomes %v", got)
	}
	for _, r := range dry {
		var got []string
		for k := range r {
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, keys) {
			t.Errorf("keys %v, want %v", got, keys)
		}
	}
	if dry[0]["case"] != "CASE-000001" || dry[0]["matched_by"] != "subject" || dry[2]["case"] != nil || dry[2]["matched_by"] != nil {
		t.Errorf("dry run: %v", dry)
	}
	for i, want := range []map[string]any{
		{"result": "pass", "method": "mx.support.test dmarc", "domain": "acme.test"},
		{"result": "none", "method": "", "domain": "evil.test"},
	} {
		if got := dry[i]["sender_auth"]; !reflect.DeepEqual(got, want) {
			t.Errorf("line %d: sender_auth %v, want %v", i, got, want)
		}
	}
	if dry[1]["reason_code"] != "sender_not_verified" || dry[2]["reason_code"] != "auto_reply" {
		t.Errorf("reason codes %v, %v", dry[1]["reason_code"], dry[2]["reason_code"])
	}
	att := dry[0]["attachments"].([]any)[0].(map[string]any)
	sum := sha256.Sum256([]byte("%PDF-1.4\n%%EOF\n"))
	if att["filename"] != "scan.pdf" || att["content_type"] != "application/pdf" || att["size"] != float64(15) || att["inline"] != false ||
		att["sha256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("attachment %v", att)
	}
	if rows := c.jsonLines("quarantine", "list", "--all"); len(rows) != 0 {
		t.Fatalf("dry run wrote quarantine rows: %v", rows)
	}
	if n := c.caseAttachments("CASE-000001"); n != 0 {
		t.Fatalf("dry run added %d attachments", n)
	}

	real := c.jsonLines("ingest", reply, stranger, ooo)
	if got := outcomes(real); !slices.Equal(got, []string{"add", "quarantine", "ignore"}) {
		t.Fatalf("outcomes %v", got)
	}
	if got := outcomes(c.jsonLines("ingest", "--dry-run", reply)); !slices.Equal(got, []string{"duplicate"}) {
		t.Errorf("second run: %v", got)
	}

	queue := c.jsonLines("quarantine", "list")
	if len(queue) != 1 || queue[0]["from"] != "mallory@evil.test" || queue[0]["reason"] == "" {
		t.Fatalf("quarantine list: %v", queue)
	}
	if all := c.jsonLines("quarantine", "list", "--all"); len(all) != 2 {
		t.Errorf("quarantine list --all: %d rows", len(all))
	}
	shown := c.json("quarantine", "show", "1")
	if shown["body"] != "let me in" || shown["kind"] != "quarantined" || shown["reason_code"] != "sender_not_verified" {
		t.Errorf("quarantine show: %v", shown)
	}
	if v, _ := shown["sender_auth"].(map[string]any); v["result"] != "none" || v["domain"] != "evil.test" {
		t.Errorf("quarantine show: sender_auth %v", shown["sender_auth"])
	}
	if _, out, _ := c.run("quarantine", "show", "1"); !strings.Contains(out, "sender:     none for evil.test") {
		t.Errorf("quarantine show lacks the verdict:\n%s", out)
	}
	// Staff reads of a quarantined mail are audited with who ran the command.
	if code, out, _ := c.run("audit", "--json"); code != 0 || !strings.Contains(out, `"action":"quarantine_view","object":"quarantine:1"`) || !strings.Contains(out, `"os_user":"`) {
		t.Errorf("quarantine show not audited: %s", out)
	}
	if code, _, _ := c.run("quarantine", "release", "1"); code != 2 {
		t.Errorf("release without --case: exit %d", code)
	}
	if code, _, errOut := c.run("quarantine", "release", "1", "--case", "CASE-000001", "--as", "alice@acme.test"); code != 1 || !strings.Contains(errOut, "not staff") {
		t.Errorf("release as a customer: exit %d, %s", code, errOut)
	}
	rel := c.json("quarantine", "release", "1", "--case", "CASE-000001", "--as", "sam@support.test")
	if rel["result"] != "added" || rel["case"] != "CASE-000001" {
		t.Errorf("release: %v", rel)
	}
	if shown := c.json("quarantine", "show", "1"); shown["status"] != "released" || shown["resolved_by"] != "sam@support.test" {
		t.Errorf("released row: %v", shown)
	}
	if code, _, _ := c.run("quarantine", "drop", "1"); code != 1 {
		t.Errorf("dropping a released mail: exit %d", code)
	}
	if n := c.caseAttachments("CASE-000001"); n != 1 {
		t.Errorf("case has %d attachments after ingest and release, want 1", n)
	}
	if rows := c.jsonLines("quarantine", "list"); len(rows) != 0 {
		t.Errorf("queue after release: %v", rows)
	}
	if code, out, _ := c.run("quarantine", "drop", "2"); code != 0 || !strings.Contains(out, "dropped") {
		t.Errorf("drop: %d %s", code, out)
	}
}
