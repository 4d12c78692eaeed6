package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob/s3test"
)

// useS3Files points the AWS *_FILE variables at files holding the test server's
// credentials (secret may be wrong on purpose).
func useS3Files(t *testing.T, secret string) {
	dir := t.TempDir()
	id, sec := filepath.Join(dir, "id"), filepath.Join(dir, "secret")
	os.WriteFile(id, []byte(s3test.AccessKey+"\n"), 0o600)
	os.WriteFile(sec, []byte(secret+"\n"), 0o600)
	t.Setenv("AWS_ACCESS_KEY_ID_FILE", id)
	t.Setenv("AWS_SECRET_ACCESS_KEY_FILE", sec)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestBlobsOnS3 moves a store from the directory to S3 with `blobs migrate`, then
// runs encrypt, verify, rekey and gc on S3, and checks what a corrupted object and
// wrong credentials say.
func TestBlobsOnS3(t *testing.T) {
	srv := s3test.Start(t)
	useS3Files(t, s3test.SecretKey)
	s3url := srv.URL("casebook")
	c := newCLI(t)
	c.json("org", "add", "Acme Health")
	c.json("user", "add", "--org", "Acme Health", "--email", "alice@acme.test")
	c.json("user", "add", "--staff", "--email", "sam@support.test")
	c.json("case", "open", "--org", "Acme Health", "--requester", "alice@acme.test", "--owner", "sam@support.test", "--subject", "x")
	for i, body := range []string{"first", "second"} {
		eml := filepath.Join(t.TempDir(), "m.eml")
		os.WriteFile(eml, []byte("From: alice@acme.test\r\nSubject: [CASE-000001] scan\r\nMessage-ID: <m"+string(rune('0'+i))+"@acme.test>\r\n\r\n"+body+"\r\n"), 0o600)
		if code, _, errOut := c.run("ingest", eml); code != 0 {
			t.Fatalf("ingest: %d %s", code, errOut)
		}
	}

	if m := c.json("blobs", "migrate", "--to", s3url); m["copied"] != 2.0 || m["present"] != 0.0 {
		t.Errorf("migrate = %v", m)
	}
	// Resumable: a second run finds everything there.
	if m := c.json("blobs", "migrate", "--to", s3url); m["copied"] != 0.0 || m["present"] != 2.0 {
		t.Errorf("migrate again = %v", m)
	}
	s3 := func(args ...string) map[string]any { return c.json(append(args, "--blob-url", s3url)...) }
	if v := s3("blobs", "verify"); v["checked"] != 2.0 {
		t.Errorf("verify on S3 = %v", v)
	}
	key, next := writeKey(t), writeKey(t)
	if e := s3("blobs", "encrypt", "--blob-key-file", key); e["encrypted"] != 2.0 {
		t.Errorf("encrypt on S3 = %v", e)
	}
	if r := s3("blobs", "rekey", "--new-key-file", next, "--blob-key-file", key); r["rewrapped"] != 2.0 {
		t.Errorf("rekey on S3 = %v", r)
	}
	if v := s3("blobs", "verify", "--blob-key-file", next); v["checked"] != 2.0 {
		t.Errorf("verify with the new key = %v", v)
	}
	if g := s3("blobs", "gc", "--blob-grace", "0s", "--blob-key-file", next); g["blobs"] != 2.0 || g["removed"] != 0.0 {
		t.Errorf("gc on S3 = %v", g)
	}

	// A corrupted object: verify names it.
	var objects []string
	filepath.WalkDir(filepath.Join(srv.Dir(), s3test.Bucket, "casebook", "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			objects = append(objects, p)
		}
		return nil
	})
	if len(objects) != 2 {
		t.Fatalf("%d objects in the bucket, want 2", len(objects))
	}
	raw, _ := os.ReadFile(objects[0])
	raw[len(raw)-20] ^= 1
	os.WriteFile(objects[0], raw, 0o600)
	code, out, _ := c.run("blobs", "verify", "--blob-url", s3url, "--blob-key-file", next)
	if code == 0 || !strings.Contains(out, "damaged  "+filepath.Base(objects[0])) {
		t.Errorf("verify of a corrupted object: exit %d\n%s", code, out)
	}

	// Wrong credentials: a clear error at start, and the doctor's line.
	useS3Files(t, "wrong-secret")
	code, _, errOut := c.run("blobs", "verify", "--blob-url", s3url, "--blob-key-file", next)
	if code == 0 || !strings.Contains(errOut, "access denied") {
		t.Errorf("verify with a wrong secret: exit %d: %s", code, errOut)
	}
	code, out, _ = c.run("doctor", "--blob-url", s3url, "--blob-key-file", next)
	if code == 0 || !strings.Contains(out, "FAIL  storage") || !strings.Contains(out, "access denied") {
		t.Errorf("doctor with a wrong secret: exit %d\n%s", code, out)
	}
}

func TestAWSFileCredentials(t *testing.T) {
	dir := t.TempDir()
	file := func(name, v string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(v+"\n"), 0o600)
		return p
	}
	id, secret, token := file("id", "AKID"), file("secret", "SECRET"), file("token", "TOKEN")
	for _, c := range []struct {
		name string
		env  map[string]string
		want string // AccessKeyID/SecretAccessKey/SessionToken, or an error's words
	}{
		{"none: the standard chain", map[string]string{}, "//"},
		{"variables only: the standard chain", map[string]string{"AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S"}, "//"},
		{"files", map[string]string{"AWS_ACCESS_KEY_ID_FILE": id, "AWS_SECRET_ACCESS_KEY_FILE": secret, "AWS_SESSION_TOKEN_FILE": token}, "AKID/SECRET/TOKEN"},
		{"a variable wins over its file", map[string]string{"AWS_ACCESS_KEY_ID": "A", "AWS_ACCESS_KEY_ID_FILE": id, "AWS_SECRET_ACCESS_KEY_FILE": secret}, "A/SECRET/"},
		{"a secret without an id", map[string]string{"AWS_SECRET_ACCESS_KEY_FILE": secret}, "need both"},
		{"a missing file", map[string]string{"AWS_ACCESS_KEY_ID_FILE": filepath.Join(dir, "nope")}, "AWS_ACCESS_KEY_ID_FILE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := awsFileCredentials(func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
			s := got.AccessKeyID + "/" + got.SecretAccessKey + "/" + got.SessionToken
			if err != nil {
				s = err.Error()
			}
			if !strings.Contains(s, c.want) {
				t.Errorf("got %q, want %q", s, c.want)
			}
		})
	}
}

func TestBlobURLValidate(t *testing.T) {
	for _, c := range []struct {
		url string
		ok  bool
	}{
		{"", true},
		{"file:///var/lib/casebook/blobs", true},
		{"s3://bucket/prefix?endpoint=https://s3.example.com&region=us-east-1&path_style=true", true},
		{"file://relative/path", false},
		{"/var/lib/casebook/blobs", false},
		{"s3://bucket?path_style=perhaps", false},
		{"gs://bucket", false},
	} {
		cfg := Config{DatabaseURL: "postgres://x", DataDir: "d", MaxFileSize: 1, CasePrefix: "CASE", ScanUnavailable: scanBlock, ReplyTokenTTL: casebook.DefaultTokenTTL, BlobURL: c.url}
		if err := cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("Validate(--blob-url %q) = %v", c.url, err)
		}
	}
}
