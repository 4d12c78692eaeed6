package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/password"
	"github.com/casebookhq/casebook/templates"
)

// TestPagesRender renders every page with its data type, and checks that every
// template file is a page the server knows.
func TestPagesRender(t *testing.T) {
	p, err := parsePages(templates.Pages, casebook.DefaultRefFormat)
	if err != nil {
		t.Fatal(err)
	}
	org := int64(1)
	user := &casebook.User{ID: 1, OrgID: &org, Email: "alice@acme.test", Name: "Alice"}
	now := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	c := casebook.Case{ID: 1, Number: 42, OrgName: "Acme Health", Owner: "sam@support.test", OwnerName: "Sam",
		Subject: "Lab results", Status: casebook.StatusOpen, Attachments: 1, UpdatedAt: now}
	staff := &casebook.User{ID: 2, Email: "sam@support.test", Name: "Sam", Staff: true}
	att := casebook.Attachment{ID: 7, Filename: "results.pdf", Size: 2048, Author: "Alice <alice@acme.test>", CreatedAt: now}
	data := map[string]struct {
		data any
		want []string
	}{
		"login":    {LoginPage{Layout: Layout{Title: "Log in"}, Email: "a@b.test", Failed: true}, []string{"<h1>Log in</h1>", `role="alert"`, `autocomplete="current-password"`, `<label for="email">`}},
		"forgot":   {ForgotPage{Layout: Layout{Title: "Forgot your password?"}, Sent: true}, []string{"If an account with that address exists"}},
		"password": {PasswordPage{Layout: Layout{Title: "Choose", User: user, Restricted: true}, Forced: true, Min: 15}, []string{"Set a new password", `minlength="15"`, "Log out"}},
		"cases":    {CaseListPage{Layout: Layout{Title: "Cases", User: user}, Tab: "open", Cases: []casebook.Case{c}, Next: "1.2"}, []string{"CASE-000042", `aria-current="page"`, "Older cases", `<th scope="col">Files</th>`}},
		"case": {CasePage{Layout: Layout{Title: "CASE-000042", User: user}, Case: c, CanUpload: true, MaxFiles: 10, MaxFileSize: 25 << 20,
			Attachments: []casebook.Attachment{att},
			Timeline:    []casebook.TimelineEntry{{ID: 1, Source: casebook.SourceDiscord, Author: "Alice", Body: "hi\nthere", CreatedAt: now, Attachments: []casebook.Attachment{att}}}},
			[]string{"Add attachment", "26.2 MB", "Discord", `href="/attachments/7"`, "2.0 kB", "<p>there</p>"}},
		"mfa_code":  {CodePage{Layout: Layout{Title: "Enter your code"}, Failed: true}, []string{`action="/login/code"`, `autocomplete="one-time-code"`, `role="alert"`}},
		"mfa_enrol": {EnrolPage{Layout: Layout{Title: "Set up"}, Secret: "ABCD EFGH", Problem: "wrong"}, []string{`src="/mfa/enrol/qr.png"`, "ABCD EFGH", `action="/mfa/enrol"`, `role="alert"`}},
		"mfa_recovery": {RecoveryPage{Layout: Layout{Title: "Recovery", User: user, Restricted: true}, Codes: []string{"abcde-fghij", "klmno-pqrst"}, Next: "/cases"},
			[]string{"<code>abcde-fghij</code>", "<code>klmno-pqrst</code>", `href="/cases"`}},
		"sessions": {SessionsPage{Layout: Layout{Title: "Your sessions", User: user}, Sessions: []casebook.Session{
			{ID: 1, CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute), IP: "192.0.2.7", UserAgent: "Firefox", Current: true},
			{ID: 2, CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute), IP: "198.51.100.9", UserAgent: "Safari"}}},
			[]string{"(this browser)", "198.51.100.9", `action="/account/sessions/end-others"`, `href="/account/sessions"`}},
		"quarantine": {QuarantinePage{Layout: Layout{Title: "Quarantine", User: staff, QuarantinePending: 3}, Next: 9, Items: []QueueEntry{{
			QuarantineItem: casebook.QuarantineItem{ID: 9, ReasonCode: "not_allowed", Reason: "the sender may not write", Sender: "eve@evil.test", Subject: "Re: [CASE-000042]", CreatedAt: now},
			Verdict:        "fail for evil.test", Age: "3 h"}}},
			[]string{`href="/quarantine/9"`, "not_allowed", "eve@evil.test", "fail for evil.test", "3 h", `href="/quarantine?after=9"`, `<span class="count">3</span>`}},
		"quarantine_item": {QuarantineItemPage{Layout: Layout{Title: "Quarantined mail 9", User: staff}, Pending: true, CaseRef: "CASE-000042", Problem: "There is no such case.",
			Item:  QueueEntry{QuarantineItem: casebook.QuarantineItem{ID: 9, ReasonCode: "no_case_ref", Sender: "eve@evil.test", RawBlob: "k", Body: "hello\nthere", Status: "pending", CreatedAt: now}, Verdict: "none"},
			Files: []casebook.QuarantinedFile{{Index: 0, Filename: "scan.pdf", ContentType: "application/pdf", Size: 2048}}},
			[]string{`action="/quarantine/9/release"`, `value="CASE-000042"`, `action="/quarantine/9/drop"`, `href="/quarantine/9/files/0"`, "<p>there</p>", `role="alert"`}},
		"error": {ErrorPage{Layout: Layout{Title: "Not Found"}, Status: 404, Message: "There is no such page."}, []string{"There is no such page."}},
	}
	for _, name := range pageNames {
		t.Run(name, func(t *testing.T) {
			d, ok := data[name]
			if !ok {
				t.Fatalf("no test data for page %s", name)
			}
			var buf bytes.Buffer
			if err := p.byName[name].ExecuteTemplate(&buf, "base", d.data); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			for _, w := range append(d.want, `<html lang="en">`, `name="viewport"`, `href="/static/casebook.css"`, `<main id="main"`) {
				if !strings.Contains(out, w) {
					t.Errorf("page %s lacks %q", name, w)
				}
			}
			// The CSP forbids inline style and script: the pages must not need them.
			for _, bad := range []string{"<script", "style=", "<style", "onclick="} {
				if strings.Contains(out, bad) {
					t.Errorf("page %s carries %q, which the CSP would block", name, bad)
				}
			}
		})
	}
	files, _ := fs.Glob(templates.Pages, "pages/*.html")
	for _, f := range files {
		if n := strings.TrimSuffix(path.Base(f), ".html"); n != "base" && !slices.Contains(pageNames, n) {
			t.Errorf("template %s is not a known page", f)
		}
	}
}

func TestThrottleDelay(t *testing.T) {
	th := Throttle{Free: 5, Window: time.Hour, Max: 15 * time.Minute}
	for failures, want := range map[int]time.Duration{
		1: 0, 5: 0, 6: time.Second, 7: 2 * time.Second, 10: 16 * time.Second, 15: 512 * time.Second, 16: 15 * time.Minute, 1000: 15 * time.Minute,
	} {
		if got := th.delay(failures); got != want {
			t.Errorf("delay(%d) = %v, want %v", failures, got, want)
		}
	}
}

func TestHTTPServerLimits(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	srv := s.httpServer()
	if srv.ReadHeaderTimeout <= 0 || srv.ReadHeaderTimeout > 30*time.Second || srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 64<<10 || srv.IdleTimeout <= 0 {
		t.Errorf("server limits: ReadHeaderTimeout %v, MaxHeaderBytes %d, IdleTimeout %v", srv.ReadHeaderTimeout, srv.MaxHeaderBytes, srv.IdleTimeout)
	}
}

func TestSessionSettings(t *testing.T) {
	sm := newSessionManager(Options{})
	if sm.Lifetime != 15*time.Minute || sm.Cookie.Name != "__Host-casebook" || !sm.Cookie.Secure || !sm.Cookie.HttpOnly || sm.Cookie.Persist {
		t.Errorf("session settings: %+v idle %v lifetime %v", sm.Cookie, sm.IdleTimeout, sm.Lifetime)
	}
}

func TestSessionCheck(t *testing.T) {
	login := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		now, seen   time.Time
		ended, tick bool
	}{
		{"just logged in", login, login, false, false},
		{"active a minute later", login.Add(time.Minute), login, false, true},
		{"14 minutes idle", login.Add(14 * time.Minute), login, false, true},
		{"15 minutes idle", login.Add(15 * time.Minute), login, true, false},
		{"active all day, 7h59m", login.Add(8*time.Hour - time.Minute), login.Add(8*time.Hour - 2*time.Minute), false, true},
		{"active all day, 8h", login.Add(8 * time.Hour), login.Add(8*time.Hour - time.Second), true, false},
		{"seen in the future", login, login.Add(time.Hour), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ended, touch := sessionCheck(tt.now, login, tt.seen)
			if ended != tt.ended || touch != tt.tick {
				t.Errorf("sessionCheck = %v, %v; want %v, %v", ended, touch, tt.ended, tt.tick)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	tests := []struct {
		remote, xff string
		proxy       bool
		want        string
	}{
		{"192.0.2.7:5555", "", false, "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "", false, "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.9]:80", "", false, "192.0.2.9"},
		{"not an address", "", false, "not an address"},
		{"127.0.0.1:5555", "198.51.100.1", false, "127.0.0.1"},
		{"127.0.0.1:5555", "203.0.113.66, 198.51.100.1", true, "198.51.100.1"},
		{"127.0.0.1:5555", "", true, "127.0.0.1"},
	}
	for _, tt := range tests {
		s := &Server{opt: Options{BehindProxy: tt.proxy}}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := s.clientIP(r); got != tt.want {
			t.Errorf("clientIP(%q, %q, proxy %v) = %q, want %q", tt.remote, tt.xff, tt.proxy, got, tt.want)
		}
	}
}

func TestHoldback(t *testing.T) {
	var out bytes.Buffer
	h := &holdback{w: &out, keep: 4}
	h.Write([]byte("abc"))
	h.Write([]byte("defgh"))
	if out.String() != "abcd" || h.wrote != true {
		t.Errorf("before flush: %q", out.String())
	}
	h.flush()
	if out.String() != "abcdefgh" {
		t.Errorf("after flush: %q", out.String())
	}
}

func FuzzParseCursor(f *testing.F) {
	f.Add("1732539600000000.42")
	f.Add("-5.1")
	f.Add(".")
	f.Add("1.0")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := parseCursor(s)
		if !ok {
			return
		}
		if c.ID <= 0 {
			t.Fatalf("parseCursor(%q) accepted id %d", s, c.ID)
		}
		back, ok := parseCursor(formatCursor(c))
		if !ok || !back.UpdatedAt.Equal(c.UpdatedAt) || back.ID != c.ID {
			t.Fatalf("cursor %q does not round-trip: %+v -> %+v", s, c, back)
		}
	})
}

func TestAuditBatcher(t *testing.T) {
	var mu sync.Mutex
	var written []string
	var batches int
	fail := false
	b := &auditBatcher{write: func(ctx context.Context, es []casebook.AuditEntry) error {
		time.Sleep(time.Millisecond) // a commit
		mu.Lock()
		defer mu.Unlock()
		batches++
		if fail {
			return errors.New("disk full")
		}
		for _, e := range es {
			written = append(written, e.Object)
		}
		return nil
	}}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			if err := b.append(casebook.AuditEntry{Object: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(written) != 200 || len(slices.Compact(slices.Sorted(slices.Values(written)))) != 200 {
		t.Errorf("%d rows written, want 200 distinct", len(written))
	}
	if batches >= 200 {
		t.Logf("no batching happened (%d batches): the machine may be idle", batches)
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	if err := b.append(casebook.AuditEntry{Object: "x"}); err == nil {
		t.Error("a failed write reported success")
	}
}

func TestLockSet(t *testing.T) {
	l := lockSet{memory: 50 * time.Millisecond}
	a, b := []string{"account:a@b.test", "ip:192.0.2.1"}, []string{"account:a@b.test", "ip:192.0.2.2"}
	l.add(a)
	if !l.has(a) || l.has(b) {
		t.Errorf("has(a) = %v, has(b) = %v right after add(a)", l.has(a), l.has(b))
	}
	time.Sleep(60 * time.Millisecond)
	if l.has(a) {
		t.Error("a lock is remembered past its memory")
	}
	off := lockSet{memory: -1}
	off.add(a)
	if off.has(a) {
		t.Error("a negative memory remembers")
	}
}

func TestLooksLikeCode(t *testing.T) {
	for pw, want := range map[string]bool{
		password.Generate():                   true,
		"ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ":    true,
		"violet staple river lantern":         false,
		"abcdefghijklmnopqrstuvwxy":           false,
		"abcdefghijklmnopqrstuvwxy1":          false,
		"correct horse battery staple rocket": false,
	} {
		if got := looksLikeCode(pw); got != want {
			t.Errorf("looksLikeCode(%q) = %v, want %v", pw, got, want)
		}
	}
}
