package web_test

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/web"
)

const wantCSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// publicRoutes answer without a session.
var publicRoutes = map[string]bool{
	"GET /{$}": true, "GET /login": true, "POST /login": true, "POST /logout": true,
	"GET /password/forgot": true, "POST /password/forgot": true,
}

// request builds a request for a route pattern, naming the other org's case and
// attachment wherever the route takes one.
func (e *env) request(t *testing.T, pattern string, extra http.Header) *http.Request {
	t.Helper()
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.TrimSuffix(path, "{$}")
	path = strings.ReplaceAll(path, "{ref}", e.ref(e.case2))
	path = strings.ReplaceAll(path, "{id}", fmt.Sprint(e.att2.ID))
	path = strings.ReplaceAll(path, "{n}", "0")
	if strings.Contains(path, "{") {
		t.Fatalf("route %s takes a parameter the walker does not know: teach it", pattern)
	}
	var body bytes.Buffer
	ctype := "application/x-www-form-urlencoded"
	if method == "POST" {
		if strings.HasSuffix(path, "/attachments") {
			mw := multipart.NewWriter(&body)
			w, _ := mw.CreateFormFile("files", "x.png")
			w.Write(png)
			mw.Close()
			ctype = mw.FormDataContentType()
		} else {
			body.WriteString(url.Values{"email": {"x@acme.test"}}.Encode())
		}
	}
	req, err := http.NewRequest(method, e.ts.URL+path, &body)
	if err != nil {
		t.Fatal(err)
	}
	if method == "POST" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	return req
}

func checkHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Security-Policy":   wantCSP,
		"X-Content-Type-Options":    "nosniff",
		"Referrer-Policy":           "no-referrer",
		"X-Frame-Options":           "DENY",
		"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", what, k, got, want)
		}
	}
	if cc := h.Values("Cache-Control"); len(cc) == 0 || cc[0] != "no-store" {
		t.Errorf("%s: Cache-Control = %q, want no-store", what, cc)
	}
}

// TestRouteWalker visits every route: each carries the security headers, each that
// needs a login refuses without one, and each that takes a case or an attachment
// refuses another org's with 404 and an audit row, never showing its content.
func TestRouteWalker(t *testing.T) {
	e := newEnv(t)
	for _, route := range e.srv.Routes() {
		t.Run(route, func(t *testing.T) {
			anon := e.client().do(e.request(t, route, nil))
			checkHeaders(t, "anonymous "+route, anon.Header)
			if !publicRoutes[route] && (anon.StatusCode != http.StatusSeeOther || anon.Header.Get("Location") != "/login") {
				t.Errorf("anonymous %s: %d %s, want a redirect to /login", route, anon.StatusCode, anon.Header.Get("Location"))
			}

			c := e.loggedIn(e.alice.Email, alicePW)
			before := len(must(e.st.AuditLog(t.Context(), postgres.AuditFilter{UserID: e.alice.ID})))
			r := c.do(e.request(t, route, nil))
			checkHeaders(t, route, r.Header)
			if strings.Contains(r.body, "Globex secret scan") || strings.Contains(r.body, string(e.att2Body)) {
				t.Errorf("%s shows the other org's case", route)
			}
			if strings.Contains(route, "{ref}") || strings.Contains(route, "{id}") || strings.Contains(route, "/quarantine") {
				if r.StatusCode != http.StatusNotFound {
					t.Errorf("%s with the other org's id: %d, want 404", route, r.StatusCode)
				}
				rows := must(e.st.AuditLog(t.Context(), postgres.AuditFilter{UserID: e.alice.ID}))
				if len(rows) != before+1 || rows[len(rows)-1].Outcome != "denied" {
					t.Errorf("%s: no denied audit row (%d rows before, %d after)", route, before, len(rows))
				}
			}
		})
	}
	if n := e.count(`SELECT count(*) FROM updates WHERE case_id = $1`, e.case2.ID); n != 1 {
		t.Errorf("the other org's case gained %d updates", n-1)
	}
	if r := e.client().get("/no/such/page"); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown page: %d", r.StatusCode)
	} else {
		checkHeaders(t, "unknown page", r.Header)
	}
	// The stylesheet holds no health information and may be cached.
	css := e.client().get("/static/casebook.css")
	if css.StatusCode != http.StatusOK || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") || css.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Errorf("stylesheet: %d %q %q", css.StatusCode, css.Header.Get("Content-Type"), css.Header.Get("Cache-Control"))
	}
	css.Header.Set("Cache-Control", "no-store")
	checkHeaders(t, "stylesheet", css.Header)
	// Files only: the directory is not listed.
	for _, dir := range []string{"/static/"} {
		if r := e.client().get(dir); r.StatusCode != http.StatusNotFound || strings.Contains(r.body, "casebook.css") {
			t.Errorf("GET %s: %d, lists %q", dir, r.StatusCode, r.body)
		}
	}
}

// TestCrossOrigin sends every state change as another site would: all are refused
// before they do anything.
func TestCrossOrigin(t *testing.T) {
	e := newEnv(t)
	for _, hdr := range []http.Header{
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Origin": {"https://evil.example"}},
	} {
		for _, route := range e.srv.Routes() {
			if !strings.HasPrefix(route, "POST ") {
				continue
			}
			t.Run(route, func(t *testing.T) {
				c := e.loggedIn(e.alice.Email, alicePW)
				req := e.request(t, strings.ReplaceAll(route, "{ref}", "X"), nil)
				req.URL.Path = strings.ReplaceAll(req.URL.Path, "/X/", "/"+e.ref(e.case1)+"/")
				for k, v := range hdr {
					req.Header[k] = v
				}
				r := c.do(req)
				if r.StatusCode != http.StatusForbidden {
					t.Errorf("%s %v: %d, want 403", route, hdr, r.StatusCode)
				}
				checkHeaders(t, route, r.Header)
				if cr := c.get("/cases"); cr.StatusCode != http.StatusOK {
					t.Errorf("cross-site %s changed the session: %d", route, cr.StatusCode)
				}
			})
		}
	}
	if n := e.count(`SELECT count(*) FROM updates WHERE source = 'web'`); n != 0 {
		t.Errorf("a cross-site upload was stored")
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE kind = 'temporary_password'`); n != 0 {
		t.Errorf("a cross-site reset request was served")
	}
	// A same-origin form post passes.
	c := e.loggedIn(e.alice.Email, alicePW)
	req := e.request(t, "POST /cases/{ref}/attachments", http.Header{"Sec-Fetch-Site": {"same-origin"}})
	req.URL.Path = "/cases/" + e.ref(e.case1) + "/attachments"
	if r := c.do(req); r.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin upload: %d", r.StatusCode)
	}
}

// TestAuditFailureWithholdsPHI: when the audit row cannot be written, nothing is served.
func TestAuditFailureWithholdsPHI(t *testing.T) {
	e := newEnv(t)
	c := e.loggedIn(e.alice.Email, alicePW)
	e.failAudit.Store(true)
	for _, path := range []string{"/cases/" + e.ref(e.case1), fmt.Sprintf("/attachments/%d", e.att1.ID)} {
		r := c.get(path)
		if r.StatusCode != http.StatusInternalServerError || strings.Contains(r.body, "Lab results") || strings.Contains(r.body, string(e.att1Body)) {
			t.Errorf("GET %s with the audit log down: %d", path, r.StatusCode)
		}
	}
	if r := e.client().login(e.alice.Email, alicePW); r.StatusCode != http.StatusInternalServerError || len(r.Cookies()) != 0 {
		t.Errorf("login with the audit log down: %d %v", r.StatusCode, r.Cookies())
	}
}

// TestExtraHandlers: endpoints mounted through Options.Extra answer without a
// session or the cross-origin check (they authenticate themselves).
func TestExtraHandlers(t *testing.T) {
	e := newEnv(t, func(o *web.Options) {
		o.Extra = map[string]http.Handler{"POST /slack/events": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ok"))
		})}
	})
	req, _ := http.NewRequest("POST", e.ts.URL+"/slack/events", strings.NewReader("{}"))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	r := e.client().do(req)
	if r.StatusCode != http.StatusOK || r.body != "ok" || len(r.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("extra handler: %d %q %q", r.StatusCode, r.body, r.Header.Values("Set-Cookie"))
	}
	if r := e.client().get("/login"); r.StatusCode != http.StatusOK {
		t.Errorf("page beside the extra handler: %d", r.StatusCode)
	}
}
