package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/syncbuf"
	"github.com/casebookhq/casebook/casebook/web"
)

var png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

func TestUpload(t *testing.T) {
	e := newEnv(t)
	c := e.loggedIn(e.alice.Email, alicePW)
	pdf := []byte("%PDF-1.7\nnew results\n%%EOF\n")
	r := c.upload(e.ref(e.case1), upFile{"new results.pdf", pdf}, upFile{"scan.png", png}, upFile{"notes.txt", []byte("plain notes, nothing more")})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/cases/"+e.ref(e.case1) {
		t.Fatalf("upload: %d %s %s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	page := c.get(r.Header.Get("Location"))
	for _, want := range []string{"3 files added.", "new results.pdf", "scan.png", "notes.txt", ">Web page<"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("case page after upload lacks %q", want)
		}
	}
	var up struct {
		ExternalID   string `db:"external_id"`
		AuthorUserID int64  `db:"author_user_id"`
	}
	if err := e.st.DB().Get(&up, `SELECT external_id, author_user_id FROM updates WHERE source = 'web'`); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(up.ExternalID, "web-") || len(up.ExternalID) < 24 || up.AuthorUserID != e.alice.ID {
		t.Errorf("update = %+v", up)
	}
	var types []string
	e.st.DB().Select(&types, `SELECT content_type FROM attachments WHERE case_id = $1 ORDER BY id`, e.case1.ID)
	if strings.Join(types, " ") != "application/pdf application/pdf image/png text/plain; charset=utf-8" {
		t.Errorf("stored types = %q", types)
	}
	// The owner is told, as for any channel.
	if n := e.count(`SELECT count(*) FROM outbox WHERE kind = 'owner_notification' AND recipient = $1`, e.sam.Email); n != 2 {
		t.Errorf("%d owner notifications, want 2 (fixture and upload)", n)
	}
	ups := e.audits("upload")
	if len(ups) != 1 || !strings.HasPrefix(ups[0].Object, e.ref(e.case1)+"/update/") || ups[0].Outcome != "success: 3 file(s)" {
		t.Errorf("upload audit = %+v", ups)
	}
	// Another upload of the same form is a new update: each request has its own id.
	if r := c.upload(e.ref(e.case1), upFile{"scan.png", png}); r.StatusCode != http.StatusSeeOther {
		t.Errorf("second upload: %d", r.StatusCode)
	}
}

func TestUploadRefusalsLeaveNothing(t *testing.T) {
	e := newEnv(t, func(o *web.Options) { o.MaxFileSize = 4 << 10; o.MaxFiles = 2 })
	c := e.loggedIn(e.alice.Email, alicePW)
	big := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("x"), 5<<10)...)
	fresh := func() []byte { return append([]byte("%PDF-1.4\n"), []byte(rand.Text())...) }
	tests := []struct {
		name   string
		files  []upFile
		status int
		says   string
	}{
		{"too large", []upFile{{"ok.pdf", fresh()}, {"big.pdf", big}}, http.StatusRequestEntityTooLarge, "larger than 4.1 kB"},
		{"too many", []upFile{{"a.pdf", fresh()}, {"b.pdf", fresh()}, {"c.pdf", fresh()}}, http.StatusRequestEntityTooLarge, "at most 2 files"},
		{"executable", []upFile{{"ok.pdf", fresh()}, {"setup.pdf", []byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff")}}, http.StatusUnsupportedMediaType, "not accept"},
		{"html", []upFile{{"page.txt", []byte("<!DOCTYPE html><html><script>alert(1)</script></html>")}}, http.StatusUnsupportedMediaType, "not accept"},
		{"svg", []upFile{{"img.png", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)}}, http.StatusUnsupportedMediaType, "not accept"},
		{"empty file", []upFile{{"empty.pdf", nil}}, http.StatusBadRequest, "could not be read"},
		{"no file", nil, http.StatusBadRequest, "Choose at least one file"},
	}
	blobs, updates := e.blobFiles(), e.count(`SELECT count(*) FROM updates`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.upload(e.ref(e.case1), tt.files...)
			if r.StatusCode != tt.status || !strings.Contains(r.body, tt.says) {
				t.Errorf("%d, want %d saying %q", r.StatusCode, tt.status, tt.says)
			}
			if n := e.blobFiles(); n != blobs {
				t.Errorf("%d blobs left behind", n-blobs)
			}
			if n := e.count(`SELECT count(*) FROM updates`); n != updates {
				t.Errorf("%d updates stored", n-updates)
			}
		})
	}
	tmp, _ := os.ReadDir(filepath.Join(e.blobs.Backend().(*blob.Dir).Root(), "tmp"))
	if len(tmp) != 0 {
		t.Errorf("%d temporary files left", len(tmp))
	}
	for _, a := range e.audits("upload") {
		if a.Outcome != "refused" {
			t.Errorf("refusal audited as %q", a.Outcome)
		}
	}
}

func TestUploadToClosedCase(t *testing.T) {
	e := newEnv(t)
	e.st.SetCaseStatus(context.Background(), e.case1.Number, casebook.StatusClosed)
	c := e.loggedIn(e.alice.Email, alicePW)
	if r := c.upload(e.ref(e.case1), upFile{"a.png", png}); r.StatusCode != http.StatusConflict {
		t.Errorf("upload to a closed case: %d", r.StatusCode)
	}
}

func TestUploadIsStreamed(t *testing.T) {
	// A body that is not multipart is refused before anything is read into memory.
	e := newEnv(t)
	c := e.loggedIn(e.alice.Email, alicePW)
	req, _ := http.NewRequest("POST", e.ts.URL+"/cases/"+e.ref(e.case1)+"/attachments", strings.NewReader("files=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := c.do(req); r.StatusCode != http.StatusBadRequest {
		t.Errorf("non-multipart upload: %d", r.StatusCode)
	}
}

func TestDownload(t *testing.T) {
	e := newEnv(t)
	tricky := "rapport \"final\"\r\nSet-Cookie: x=y; é.pdf"
	att := e.attach(e.case1, e.alice, tricky, e.att1Body)
	c := e.loggedIn(e.alice.Email, alicePW)
	r := c.get(fmt.Sprintf("/attachments/%d", att.ID))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("download: %d", r.StatusCode)
	}
	if r.body != string(e.att1Body) || sha([]byte(r.body)) != att.SHA256 {
		t.Errorf("body differs")
	}
	h := r.Header
	disp, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
	if err != nil || disp != "attachment" || params["filename"] != att.Filename {
		t.Errorf("Content-Disposition %q -> %q %q (%v), want attachment with %q", h.Get("Content-Disposition"), disp, params["filename"], err, att.Filename)
	}
	if len(h.Values("Set-Cookie")) > 1 || strings.Contains(strings.Join(h.Values("Set-Cookie"), ""), "x=y") {
		t.Errorf("filename injected a header: %q", h.Values("Set-Cookie"))
	}
	for k, want := range map[string]string{
		"Content-Type":            "application/pdf",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "sandbox",
		"Cache-Control":           "no-store",
		"Content-Length":          fmt.Sprint(len(e.att1Body)),
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	dl := e.audits("download")
	if len(dl) != 1 || dl[0].Object != fmt.Sprintf("%s/attachment/%d", e.ref(e.case1), att.ID) || dl[0].Outcome != "success" {
		t.Errorf("download audit = %+v", dl)
	}
}

// TestDownloadChecksSHA256 serves tampered and truncated encrypted blobs. The
// decryption fails at the damaged segment (and the SHA-256 check would catch what it
// did not): a small file is refused before a byte is sent, a large one is cut off
// short of its Content-Length so the client sees a failed transfer, never a whole file.
func TestDownloadChecksSHA256(t *testing.T) {
	e := newEnv(t)
	bigBody := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("0123456789abcdef"), 32<<10)...) // 512 KiB
	big := e.attach(e.case1, e.alice, "big.pdf", bigBody)
	big2 := e.attach(e.case1, e.alice, "big2.pdf", append(bigBody, "second"...))
	damage := func(a casebook.Attachment, alter func([]byte) []byte) {
		name := filepath.Join(e.blobs.Backend().(*blob.Dir).Root(), a.BlobKey[:2], a.BlobKey)
		b, _ := os.ReadFile(name)
		if err := os.WriteFile(name, alter(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tamper := func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }
	damage(e.att1, tamper)
	damage(big, tamper)
	damage(big2, func(b []byte) []byte { return b[:len(b)-200] })
	c := e.loggedIn(e.alice.Email, alicePW)

	// Small: the whole file is checked before a byte is sent.
	r := c.get(fmt.Sprintf("/attachments/%d", e.att1.ID))
	if r.StatusCode != http.StatusInternalServerError || strings.Contains(r.body, "lab results") {
		t.Errorf("small corrupted file: %d %q", r.StatusCode, r.body)
	}
	// Large: the transfer fails short of its length.
	resp, err := c.Get(fmt.Sprintf("%s/attachments/%d", e.ts.URL, big.ID))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(got) >= len(bigBody) {
		t.Errorf("large corrupted file arrived whole: %d of %d bytes, err %v", len(got), len(bigBody), err)
	}
	// Truncated: the last segment fails to decrypt, after the first ones were sent.
	resp, err = c.Get(fmt.Sprintf("%s/attachments/%d", e.ts.URL, big2.ID))
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(got) >= len(bigBody) {
		t.Errorf("truncated file arrived whole: %d bytes, err %v", len(got), err)
	}
	var outcomes []string
	for _, a := range e.audits("download") {
		outcomes = append(outcomes, a.Outcome)
	}
	if strings.Join(outcomes, " ") != "success integrity_failure success integrity_failure success integrity_failure" {
		t.Errorf("download audit outcomes = %q", outcomes)
	}
}

// TestMalformedUpload sends multipart bodies that break off or do not parse: each is
// the client's fault, a 400 that adds nothing and logs no filename.
func TestMalformedUpload(t *testing.T) {
	const secret = "hiv-test-results-jane-doe.pdf"
	part := "--b0undary\r\nContent-Disposition: form-data; name=\"files\"; filename=\"" + secret +
		"\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\n" + strings.Repeat("x", 5000)
	for _, tc := range []struct{ name, body string }{
		{"cut off in a file", part},
		{"cut off before the first part", "--b0undary\r\nContent-Disposition: form-da"},
		{"no boundary at all", "%PDF-1.4 not multipart\r\n"},
		{"part header line too long", "--b0undary\r\nX: " + strings.Repeat("y", 20<<10) + "\r\n\r\nz\r\n--b0undary--\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			e := newEnv(t, func(o *web.Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
			before := e.count(`SELECT count(*) FROM attachments`)
			c := e.loggedIn(e.alice.Email, alicePW)
			req, _ := http.NewRequest("POST", e.ts.URL+"/cases/"+e.ref(e.case1)+"/attachments", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "multipart/form-data; boundary=b0undary")
			if r := c.do(req); r.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", r.StatusCode)
			}
			if n := e.count(`SELECT count(*) FROM attachments`); n != before {
				t.Errorf("%d attachments after a malformed upload, want %d", n, before)
			}
			if l := logs.String(); strings.Contains(l, "jane-doe") || strings.Contains(l, "level=ERROR") {
				t.Errorf("log names the file or reports an error:\n%s", l)
			}
		})
	}
}
