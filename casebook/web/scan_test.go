package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/clamav"
	"github.com/casebookhq/casebook/casebook/clamav/clamdtest"
	"github.com/casebookhq/casebook/casebook/web"
)

// scanning serves the page again over a write path that scans with clamd at addr.
func (e *env) scanning(addr string) {
	e.t.Helper()
	c := must(clamav.Parse(addr))
	e.svc = casebook.NewService(e.st, e.blobs, casebook.Options{Refs: casebook.DefaultRefFormat, Scanner: c, MalwareLog: e.st})
	e.srv = must(web.New(pgStore{e.st, e.failAudit}, e.svc, e.blobs, e.opt))
	e.ts = httptest.NewTLSServer(e.srv.Handler())
	e.t.Cleanup(e.ts.Close)
}

// TestUploadScanned checks the page's answers to an infected file (a refusal naming
// it, nothing stored, audited) and to a scanner that cannot answer (503).
func TestUploadScanned(t *testing.T) {
	srv := clamdtest.Start(t)
	down := clamdtest.Unreachable(t)
	tests := []struct {
		name    string
		clamd   string
		files   []upFile
		status  int
		says    string
		outcome string
	}{
		{"clean", srv.Addr, []upFile{{"scan.png", png}}, http.StatusSeeOther, "", "success: 1 file(s)"},
		{"EICAR", srv.Addr, []upFile{{"scan.png", png}, {"notes.txt", []byte(clamdtest.EICAR)}}, http.StatusUnprocessableEntity,
			"&#34;notes.txt&#34; was refused: our malware scan found something harmful in it (" + clamdtest.Signature + ")", "refused: malware"},
		{"clamd down", down, []upFile{{"scan.png", png}}, http.StatusServiceUnavailable,
			"Files cannot be checked for malware right now", "error: scan unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.scanning(tt.clamd)
			c := e.loggedIn(e.alice.Email, alicePW)
			updates := e.count(`SELECT count(*) FROM updates`)
			r := c.upload(e.ref(e.case1), tt.files...)
			if r.StatusCode != tt.status || !strings.Contains(r.body, tt.says) {
				t.Fatalf("%d, want %d saying %q:\n%s", r.StatusCode, tt.status, tt.says, r.body)
			}
			added := e.count(`SELECT count(*) FROM updates`) - updates
			if want := map[bool]int{true: 1, false: 0}[tt.status == http.StatusSeeOther]; added != want {
				t.Errorf("%d updates stored, want %d", added, want)
			}
			ups := e.audits("upload")
			if len(ups) != 1 || ups[0].Outcome != tt.outcome {
				t.Errorf("upload audit = %+v, want outcome %q", ups, tt.outcome)
			}
			if n := len(e.audits("malware")); n != map[bool]int{true: 1, false: 0}[tt.name == "EICAR"] {
				t.Errorf("%d malware audit rows", n)
			}
		})
	}
}
