package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/casebookhq/casebook/bots/slack/slacktest"
	"github.com/casebookhq/casebook/casebook/password"
	"github.com/casebookhq/casebook/casebook/postgres"
)

// setPassword gives a user a password they need not change, as if chosen earlier.
func (c *cluster) setPassword(t *testing.T, email, pw string) {
	t.Helper()
	ctx := context.Background()
	var id int64
	if err := c.st.DB().GetContext(ctx, &id, `SELECT id FROM users WHERE email = $1`, email); err != nil {
		t.Fatal(err)
	}
	hash, err := password.NewHasher(password.DefaultParams, 1).Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.st.SetPassword(ctx, id, hash, false); err != nil {
		t.Fatal(err)
	}
}

// webClient is a client that keeps cookies (they name no port, so one jar serves all
// three instances) and shows redirects instead of following them.
func webClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, hc *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func login(t *testing.T, hc *http.Client, base, email, pw string) (int, string) {
	t.Helper()
	resp, err := hc.PostForm(base+"/login", url.Values{"email": {email}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// checkWeb uses the page through all three instances in turn: log in on one, browse
// on another, upload on the third. The session, the login throttle and the audit
// chain live in PostgreSQL, so each holds across them.
func (c *cluster) checkWeb(t *testing.T) {
	base := func(i int) string { return "http://" + c.instances[i%len(c.instances)].web }
	ref := c.cases[0].Ref
	c.setPassword(t, "alice@acme.example", "alice-cluster-password-1")

	hc := webClient(t)
	if code, loc := login(t, hc, base(0), "alice@acme.example", "alice-cluster-password-1"); code != http.StatusSeeOther || loc == "/login" {
		t.Fatalf("login on %s: %d to %q", c.instances[0].name, code, loc)
	}
	if code, body := get(t, hc, base(1)+"/cases"); code != http.StatusOK || !strings.Contains(body, ref) {
		t.Fatalf("case list on %s: %d, lists %s: %v", c.instances[1].name, code, ref, strings.Contains(body, ref))
	}

	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, err := mw.CreateFormFile("files", "cluster-upload.txt")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(fw, "uploaded through the third instance\n")
	mw.Close()
	req, err := http.NewRequest(http.MethodPost, base(2)+"/cases/"+ref+"/attachments", &form)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/cases/"+ref {
		t.Fatalf("upload on %s: %d to %q", c.instances[2].name, resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, body := get(t, hc, base(0)+"/cases/"+ref); code != http.StatusOK || !strings.Contains(body, "cluster-upload.txt") {
		t.Errorf("case page on %s after the upload: %d, shows the file: %v", c.instances[0].name, code, strings.Contains(body, "cluster-upload.txt"))
	}

	// A stranger guessing bob's password on each instance in turn is locked out by
	// the count all three keep in PostgreSQL: even the right password is refused.
	if _, err := c.st.AddUser(context.Background(), postgres.NewUser{Email: "bob@acme.example", OrgID: c.orgID(t)}); err != nil {
		t.Fatal(err)
	}
	c.setPassword(t, "bob@acme.example", "bob-cluster-password-1")
	stranger := webClient(t)
	for i := range 12 {
		if code, loc := login(t, stranger, base(i), "bob@acme.example", fmt.Sprint("guess-", i)); code == http.StatusSeeOther {
			t.Fatalf("wrong password %d on %s let in, to %q", i, c.instances[i%3].name, loc)
		}
	}
	// The lock lasts a second after the sixth failure and doubles with each failure
	// counted after it, but a guess refused by a lock is not counted, and an instance
	// trusts a lock it saw for a second: the twelve guesses may all fall inside the
	// first lock, or outlast it. So guess on, a tenth of a second apart, until the lock
	// has a second left, then send the right password.
	lockLeft := func() time.Duration {
		var left float64
		err := c.st.DB().QueryRowContext(context.Background(), `SELECT COALESCE(EXTRACT(EPOCH FROM max(locked_until) - now()), 0)
			FROM login_throttle WHERE key = 'account:bob@acme.example'`).Scan(&left)
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(left * float64(time.Second))
	}
	n := 12
	for deadline := time.Now().Add(15 * time.Second); lockLeft() < time.Second; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d wrong passwords spread over three instances in 15 s never locked bob's account for a second", n)
		}
		login(t, stranger, base(n), "bob@acme.example", fmt.Sprint("guess-", n))
		time.Sleep(100 * time.Millisecond)
	}
	if code, loc := login(t, stranger, base(n), "bob@acme.example", "bob-cluster-password-1"); code == http.StatusSeeOther {
		t.Errorf("the right password after %d guesses spread over three instances let in (to %q); want the lock", n, loc)
	}

	var logins, uploads int
	err = c.st.DB().QueryRowContext(context.Background(), `SELECT count(*) FILTER (WHERE action = 'login'),
		count(*) FILTER (WHERE action = 'upload') FROM audit_log`).Scan(&logins, &uploads)
	if err != nil {
		t.Fatal(err)
	}
	if logins < 14 || uploads != 1 {
		t.Errorf("audit rows: %d logins, %d uploads; want >= 14 and 1", logins, uploads)
	}
	cmd := exec.Command(casebookBinary(t), "audit", "--verify", "--database-url", c.db)
	cmd.Env = environWithout("CASEBOOK_")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("audit --verify after writes from three instances: %v\n%s", err, out)
	}
}

func (c *cluster) orgID(t *testing.T) *int64 {
	t.Helper()
	var id int64
	if err := c.st.DB().GetContext(context.Background(), &id, `SELECT id FROM orgs WHERE domain = 'acme.example'`); err != nil {
		t.Fatal(err)
	}
	return &id
}

// The Slack channel bound to the cluster's org, and the Events API signing secret.
const (
	clusterSlackChannel = "C0CLUSTER"
	clusterSlackSecret  = "cluster-signing-secret"
)

// checkSlack delivers one Slack file event to the first instance and Slack's retries
// of it to the other two: the file is stored once, with one reply and one ✅.
func (c *cluster) checkSlack(t *testing.T) {
	f := c.slack.AddFile(slacktest.File{ID: "FCLUSTER", Name: "scan.pdf", Mimetype: "application/pdf", Content: []byte("%PDF-1.7 cluster scan")})
	body := slacktest.Callback("EvCluster", slacktest.MessageEvent{Type: "message", SubType: "file_share", Channel: clusterSlackChannel,
		User: "U1", Text: "for " + c.cases[0].Ref, TS: "700.1", Files: []goslack.File{f}})
	for i, in := range c.instances {
		req, err := http.NewRequest(http.MethodPost, "http://"+in.web+"/slack/events", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = slacktest.Sign(clusterSlackSecret, time.Now(), body)
		req.Header.Set("Content-Type", "application/json")
		if i > 0 {
			// Slack retries a delivery it saw no answer to, naming the attempt.
			req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(i))
			req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("delivery to %s: %v", in.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("delivery to %s: %d", in.name, resp.StatusCode)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.slack.Wait(ctx, func(s *slacktest.Server) bool { return len(s.Posts()) > 0 && len(s.Reactions()) > 0 }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // a second answer, were there one, would be on its way by now
	var updates int
	if err := c.st.DB().QueryRow(`SELECT count(*) FROM updates WHERE source = 'slack'`).Scan(&updates); err != nil {
		t.Fatal(err)
	}
	if posts, reactions := c.slack.Posts(), c.slack.Reactions(); updates != 1 || len(posts) != 1 || len(reactions) != 1 {
		t.Errorf("one event delivered to three instances: %d updates, %d replies, %d reactions; want 1 each", updates, len(posts), len(reactions))
	}
}
