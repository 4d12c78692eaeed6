package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casebookhq/casebook/casebook/postgres"
)

func writeKey(t *testing.T) string {
	t.Helper()
	raw := make([]byte, 32)
	rand.Read(raw)
	p := filepath.Join(t.TempDir(), "blob.key")
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBlobKeyAtStart: a wrong or missing key is a clear error before anything is
// written.
func TestBlobKeyAtStart(t *testing.T) {
	c := newCLI(t)
	key := writeKey(t)
	c.json("org", "add", "Acme Health", "--blob-key-file", key)
	c.json("user", "add", "--org", "Acme Health", "--email", "alice@acme.test", "--blob-key-file", key)
	c.json("user", "add", "--staff", "--email", "sam@support.test", "--blob-key-file", key)
	c.json("case", "open", "--org", "Acme Health", "--requester", "alice@acme.test", "--owner", "sam@support.test", "--subject", "x", "--blob-key-file", key)
	eml := filepath.Join(t.TempDir(), "m.eml")
	os.WriteFile(eml, []byte("From: alice@acme.test\r\nTo: support@example.test\r\nSubject: [CASE-000001] scan\r\nMessage-ID: <m1@acme.test>\r\n\r\nhere\r\n"), 0o600)
	if code, _, errOut := c.run("ingest", eml, "--blob-key-file", key); code != 0 {
		t.Fatalf("ingest: %d %s", code, errOut)
	}

	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("changeme\n"), 0o600)
	tests := []struct {
		name string
		args []string
		says string
	}{
		{"not a key", []string{"--blob-key-file", bad}, "32 random bytes"},
		{"missing file", []string{"--blob-key-file", filepath.Join(t.TempDir(), "nope")}, "no such file"},
		{"another key", []string{"--blob-key-file", writeKey(t)}, "not the key this store's blobs are encrypted under"},
		{"no key", nil, "no key is configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := countBlobs(t, c.dir)
			code, _, errOut := c.run(append([]string{"ingest", eml}, tt.args...)...)
			if code == 0 || !strings.Contains(errOut, tt.says) {
				t.Errorf("exit %d, stderr %q; want it to say %q", code, errOut, tt.says)
			}
			if n := countBlobs(t, c.dir); n != before {
				t.Errorf("%d blobs written", n-before)
			}
		})
	}
}

// TestBlobsCommands runs gc, verify, rekey and encrypt against a store with plaintext
// blobs from before the key, and checks a queued temporary password is sealed.
func TestBlobsCommands(t *testing.T) {
	c := newCLI(t)
	c.json("org", "add", "Acme Health")
	c.json("user", "add", "--org", "Acme Health", "--email", "alice@acme.test")
	c.json("user", "add", "--staff", "--email", "sam@support.test")
	c.json("case", "open", "--org", "Acme Health", "--requester", "alice@acme.test", "--owner", "sam@support.test", "--subject", "x")
	eml := filepath.Join(t.TempDir(), "m.eml")
	os.WriteFile(eml, []byte("From: alice@acme.test\r\nSubject: [CASE-000001] scan\r\nMessage-ID: <m2@acme.test>\r\n\r\nplain before the key\r\n"), 0o600)
	if code, _, errOut := c.run("ingest", eml); code != 0 {
		t.Fatalf("ingest: %d %s", code, errOut)
	}
	if v := c.json("blobs", "verify"); v["checked"] != 1.0 {
		t.Errorf("verify = %v", v)
	}
	if g := c.json("blobs", "gc", "--dry-run"); g["unnamed"] != 0.0 || g["dry_run"] != true {
		t.Errorf("gc = %v", g)
	}

	key, next := writeKey(t), writeKey(t)
	if e := c.json("blobs", "encrypt", "--blob-key-file", key); e["encrypted"] != 1.0 {
		t.Errorf("encrypt = %v", e)
	}
	if v := c.json("blobs", "verify", "--blob-key-file", key); v["checked"] != 1.0 {
		t.Errorf("verify after encrypt = %v", v)
	}
	c.json("user", "reset-password", "alice@acme.test", "--blob-key-file", key)
	st, err := postgres.Open(context.Background(), c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var data string
	if err := st.DB().Get(&data, `SELECT data::text FROM outbox WHERE kind = 'temporary_password' ORDER BY id DESC LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(data, `"password":`) || !strings.Contains(data, "password_sealed") {
		t.Errorf("queued temporary password is not sealed: %s", data)
	}

	if r := c.json("blobs", "rekey", "--new-key-file", next, "--blob-key-file", key); r["rewrapped"] != 1.0 || r["outbox_resealed"] == 0.0 {
		t.Errorf("rekey = %v", r)
	}
	for _, k := range []string{key, next} {
		if v := c.json("blobs", "verify", "--blob-key-file", k); v["checked"] != 1.0 {
			t.Errorf("verify with %s = %v", k, v)
		}
	}
	if r := c.json("blobs", "rekey", "--new-key-file", next, "--blob-key-file", next); r["rewrapped"] != 1.0 {
		t.Errorf("last rekey pass = %v", r)
	}
	if code, _, errOut := c.run("blobs", "verify", "--blob-key-file", key); code == 0 || !strings.Contains(errOut, "not the key") {
		t.Errorf("the old key still opens the store: %d %s", code, errOut)
	}
}

func countBlobs(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if err == nil && !d.IsDir() && len(filepath.Dir(rel)) == 2 {
			n++
		}
		return nil
	})
	return n
}
