package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/alexedwards/scs/postgresstore"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/password"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
	"github.com/casebookhq/casebook/casebook/web"
	"github.com/casebookhq/casebook/ingest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pgStore is *postgres.Store with an audit log that can be made to fail, to check
// that nothing is served then.
type pgStore struct {
	*postgres.Store
	failAudit *atomic.Bool
}

func (s pgStore) AuditBatch(ctx context.Context, es []casebook.AuditEntry) error {
	if s.failAudit.Load() {
		return fmt.Errorf("audit: disk full")
	}
	return s.Store.AuditBatch(ctx, es)
}

var _ web.Store = pgStore{}

// cheap are Argon2id parameters that keep tests fast; production uses DefaultParams.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// Passwords of the fixture users.
const (
	alicePW = "violet staple river lantern"
	bobPW   = "quiet orange harbour mittens"
	samPW   = "seven blue herons at dusk"
)

// env is a running web page over a fresh database with two orgs, a customer in each,
// a staff member owning both orgs' first cases, and one attachment on each case.
type env struct {
	t         testing.TB
	st        *postgres.Store
	srv       *web.Server
	ts        *httptest.Server
	blobs     *blob.Store
	svc       *casebook.Service
	proc      *ingest.MailProcessor
	hasher    *password.Hasher
	failAudit *atomic.Bool
	opt       web.Options
	// secrets are the TOTP secrets of the users who enrolled, by email.
	secrets map[string]string

	org1, org2         casebook.Org
	alice, bob, sam    casebook.User
	sam2               casebook.User
	case1, case2       casebook.Case
	att1, att2         casebook.Attachment
	att1Body, att2Body []byte
}

func newEnv(t testing.TB, tweak ...func(*web.Options)) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, st: pgtest.Store(t), failAudit: &atomic.Bool{}, secrets: map[string]string{}}
	var err error
	// Encrypted, as a new install with a key: downloads go through decryption.
	if e.blobs, err = blob.Open(t.TempDir(), blob.NewKey()); err != nil {
		t.Fatal(err)
	}
	e.hasher = password.NewHasher(cheap, 4)
	e.svc = casebook.NewService(e.st, e.blobs, casebook.Options{Refs: casebook.DefaultRefFormat})

	e.org1 = must(e.st.AddOrg(ctx, "Acme Health", "acme.test"))
	e.org2 = must(e.st.AddOrg(ctx, "Globex Clinic", "globex.test"))
	e.alice = e.addUser(postgres.NewUser{OrgID: &e.org1.ID, Email: "alice@acme.test", Name: "Alice"}, alicePW)
	e.bob = e.addUser(postgres.NewUser{OrgID: &e.org2.ID, Email: "bob@globex.test", Name: "Bob"}, bobPW)
	e.sam = e.addUser(postgres.NewUser{Staff: true, Email: "sam@support.test", Name: "Sam"}, samPW)
	e.sam2 = e.addUser(postgres.NewUser{Staff: true, Email: "sue@support.test", Name: "Sue"}, samPW)
	e.case1 = must(e.st.OpenCase(ctx, postgres.NewCase{OrgID: e.org1.ID, RequesterID: e.alice.ID, OwnerID: e.sam.ID, Subject: "Lab results for Alice"}))
	e.case2 = must(e.st.OpenCase(ctx, postgres.NewCase{OrgID: e.org2.ID, RequesterID: e.bob.ID, OwnerID: e.sam2.ID, Subject: "Globex secret scan"}))
	e.att1Body = []byte("%PDF-1.4\nalice's lab results\n%%EOF\n")
	e.att2Body = []byte("%PDF-1.4\nbob's confidential scan\n%%EOF\n")
	e.att1 = e.attach(e.case1, e.alice, "results.pdf", e.att1Body)
	e.att2 = e.attach(e.case2, e.bob, "scan.pdf", e.att2Body)

	e.proc = ingest.NewProcessor(e.svc, e.st, e.blobs, ingest.ProcessorOptions{})
	e.opt = web.Options{
		Desk: casebook.NewDesk(e.st, e.svc, casebook.DeskOptions{Refs: casebook.DefaultRefFormat, MessageIDDomain: "support.test",
			Releaser: ingest.Releaser{Raw: e.blobs, Processor: e.proc, TempDir: t.TempDir()}}),
		QuarantineFiles: ingest.QuarantinedFiles{Raw: e.blobs},
		Refs:            casebook.DefaultRefFormat,
		Hasher:          e.hasher,
		Sessions:        postgresstore.NewWithCleanupInterval(e.st.DB().DB, 0),
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, f := range tweak {
		f(&e.opt)
	}
	e.srv, err = web.New(pgStore{e.st, e.failAudit}, e.svc, e.blobs, e.opt)
	if err != nil {
		t.Fatal(err)
	}
	e.ts = httptest.NewTLSServer(e.srv.Handler())
	t.Cleanup(e.ts.Close)
	return e
}

// disable disables u's account as `casebook user disable` does.
func (e *env) disable(u casebook.User) {
	e.t.Helper()
	if _, err := e.st.SetUserDisabled(context.Background(), u.ID, true); err != nil {
		e.t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (e *env) addUser(nu postgres.NewUser, pw string) casebook.User {
	e.t.Helper()
	ctx := context.Background()
	nu.PasswordHash = must(e.hasher.Hash(ctx, pw))
	return must(e.st.AddUser(ctx, nu))
}

func (e *env) attach(c casebook.Case, u casebook.User, name string, body []byte) casebook.Attachment {
	e.t.Helper()
	out, err := e.svc.AddUpdate(context.Background(), casebook.Update{
		Source: casebook.SourceEmail, ExternalID: "mail-" + name + fmt.Sprint(c.Number), CaseNumber: c.Number,
		Author: casebook.Author{UserID: u.ID}, Body: "Here is the file.",
		Files: casebook.Files(casebook.File{Name: name, Body: bytes.NewReader(body)}),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	as := must(e.st.AttachmentsForCase(context.Background(), c.ID))
	for _, a := range as {
		if a.UpdateID == out.UpdateID {
			return a
		}
	}
	e.t.Fatalf("attachment %s not stored", name)
	return casebook.Attachment{}
}

// client is a browser-like client with its own cookie jar that does not follow
// redirects, so tests see them.
type client struct {
	e *env
	*http.Client
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	c := e.ts.Client()
	hc := &http.Client{Transport: c.Transport, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return &client{e: e, Client: hc}
}

// resp is a read response.
type resp struct {
	*http.Response
	body string
}

func (c *client) do(req *http.Request) resp {
	c.e.t.Helper()
	r, err := c.Do(req)
	if err != nil {
		c.e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		c.e.t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return resp{r, string(b)}
}

func (c *client) get(path string) resp {
	c.e.t.Helper()
	return c.do(must(http.NewRequest("GET", c.e.ts.URL+path, nil)))
}

func (c *client) post(path string, form url.Values) resp {
	c.e.t.Helper()
	req := must(http.NewRequest("POST", c.e.ts.URL+path, strings.NewReader(form.Encode())))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

func (c *client) login(email, pw string) resp {
	c.e.t.Helper()
	return c.post("/login", url.Values{"email": {email}, "password": {pw}})
}

// loggedIn returns a client logged in as email, enrolling a second factor or typing
// a code when the login asks for one.
func (e *env) loggedIn(email, pw string) *client {
	e.t.Helper()
	c := e.client()
	r := c.login(email, pw)
	switch r.Header.Get("Location") {
	case "/mfa/enrol":
		_, _, r = c.enrol(email)
		if !strings.Contains(r.body, `href="/cases"`) {
			e.t.Fatalf("enrolment of %s: %d", email, r.StatusCode)
		}
		return c
	case "/login/code":
		r = c.post("/login/code", url.Values{"code": {e.totpCode(email)}})
	}
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/cases" {
		e.t.Fatalf("login %s: %d %s", email, r.StatusCode, r.Header.Get("Location"))
	}
	return c
}

type upFile struct {
	name string
	body []byte
}

func (c *client) upload(ref string, files ...upFile) resp {
	c.e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range files {
		w := must(mw.CreateFormFile("files", f.name))
		w.Write(f.body)
	}
	mw.Close()
	req := must(http.NewRequest("POST", c.e.ts.URL+"/cases/"+ref+"/attachments", &buf))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return c.do(req)
}

func (e *env) ref(c casebook.Case) string { return casebook.DefaultRefFormat.Format(c.Number) }

// count runs a counting query.
func (e *env) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.st.DB().Get(&n, q, args...); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// blobFiles counts the files in the blob store (its tmp directory excluded).
func (e *env) blobFiles() int {
	e.t.Helper()
	n := 0
	filepath.WalkDir(e.blobs.Backend().(*blob.Dir).Root(), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(p, string(filepath.Separator)+"tmp"+string(filepath.Separator)) {
			n++
		}
		return nil
	})
	return n
}

// audits returns the audit rows with action, oldest first.
func (e *env) audits(action string) []casebook.AuditEntry {
	e.t.Helper()
	all := must(e.st.AuditLog(context.Background(), postgres.AuditFilter{}))
	var out []casebook.AuditEntry
	for _, a := range all {
		if a.Action == action {
			out = append(out, a)
		}
	}
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func newTLSServer(t *testing.T, h http.Handler) *httptest.Server {
	ts := httptest.NewTLSServer(h)
	t.Cleanup(ts.Close)
	return ts
}
