package web_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/casebookhq/casebook/casebook/blob"
)

// TestDownloadRange asks for parts of an encrypted attachment of several segments.
func TestDownloadRange(t *testing.T) {
	e := newEnv(t)
	body := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("0123456789abcdef"), 20<<10)...) // 320 KiB
	att := e.attach(e.case1, e.alice, "big.pdf", body)
	c := e.loggedIn(e.alice.Email, alicePW)
	n := len(body)
	etag := `"` + att.SHA256 + `"`
	for _, tc := range []struct {
		name, rng, ifRange string
		status             int
		from, to           int // the expected body is body[from:to]
	}{
		{"no range", "", "", http.StatusOK, 0, n},
		{"first bytes", "bytes=0-9", "", http.StatusPartialContent, 0, 10},
		{"across a segment", "bytes=65470-65500", "", http.StatusPartialContent, 65470, 65501},
		{"resume from the middle", "bytes=100000-", "", http.StatusPartialContent, 100000, n},
		{"suffix", "bytes=-5", "", http.StatusPartialContent, n - 5, n},
		{"end past the file", fmt.Sprintf("bytes=%d-%d", n-3, n+100), "", http.StatusPartialContent, n - 3, n},
		{"matching If-Range", "bytes=10-19", etag, http.StatusPartialContent, 10, 20},
		{"stale If-Range: the whole file", "bytes=10-19", `"other"`, http.StatusOK, 0, n},
		{"several ranges: the whole file", "bytes=0-1,5-6", "", http.StatusOK, 0, n},
		{"malformed: the whole file", "bytes=9-3", "", http.StatusOK, 0, n},
		{"another unit: the whole file", "items=0-1", "", http.StatusOK, 0, n},
		{"past the end", fmt.Sprintf("bytes=%d-", n), "", http.StatusRequestedRangeNotSatisfiable, 0, 0},
		{"empty suffix", "bytes=-0", "", http.StatusRequestedRangeNotSatisfiable, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/attachments/%d", e.ts.URL, att.ID), nil)
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			if tc.ifRange != "" {
				req.Header.Set("If-Range", tc.ifRange)
			}
			r := c.do(req)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
			}
			if r.Header.Get("Accept-Ranges") != "bytes" {
				t.Errorf("Accept-Ranges = %q", r.Header.Get("Accept-Ranges"))
			}
			switch tc.status {
			case http.StatusRequestedRangeNotSatisfiable:
				if got := r.Header.Get("Content-Range"); got != fmt.Sprintf("bytes */%d", n) {
					t.Errorf("Content-Range = %q", got)
				}
				return
			case http.StatusPartialContent:
				if got, want := r.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", tc.from, tc.to-1, n); got != want {
					t.Errorf("Content-Range = %q, want %q", got, want)
				}
				if r.Header.Get("Content-Disposition") == "" || r.Header.Get("Content-Security-Policy") != "sandbox" {
					t.Errorf("a part lacks the file headers: %v", r.Header)
				}
			}
			if r.body != string(body[tc.from:tc.to]) {
				t.Errorf("body of %d bytes, want body[%d:%d]", len(r.body), tc.from, tc.to)
			}
		})
	}

	// A damaged segment: a range that starts in it is refused before a byte is
	// sent; one that reaches it from a sound segment is cut short.
	name := filepath.Join(e.blobs.Backend().(*blob.Dir).Root(), att.BlobKey[:2], att.BlobKey)
	raw, _ := os.ReadFile(name)
	raw[len(raw)/2] ^= 0xff
	os.WriteFile(name, raw, 0o600)
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/attachments/%d", e.ts.URL, att.ID), nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", n/2, n/2+10))
	if r := c.do(req); r.StatusCode != http.StatusInternalServerError {
		t.Errorf("a range in a damaged segment: %d", r.StatusCode)
	}
	req.Header.Set("Range", "bytes=0-")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || err == nil || len(got) >= n {
		t.Errorf("a range across a damaged segment: %d, %d of %d bytes, err %v", resp.StatusCode, len(got), n, err)
	}
	failures := 0
	for _, a := range e.audits("download") {
		if a.Outcome == "integrity_failure" {
			failures++
		}
	}
	if failures != 2 {
		t.Errorf("%d downloads audited as integrity failures, want 2", failures)
	}
}
