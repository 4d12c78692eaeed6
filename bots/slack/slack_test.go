package slack_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	goslack "github.com/slack-go/slack"

	"github.com/casebookhq/casebook/bots"
	"github.com/casebookhq/casebook/bots/slack"
	"github.com/casebookhq/casebook/bots/slack/slacktest"
	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	channel       = "C0BOUND"
	customer      = "U0CUSTOMER"
	signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	subject       = "Scanner <fails> & more"
	wantSubject   = "Scanner &lt;fails&gt; &amp; more"
)

// env is a fake Slack, a database with two orgs (the first bound to channel) each
// with a case, and the adapter running against the fake with the real slack-go client.
type env struct {
	fake     *slacktest.Server
	st       *postgres.Store
	slack    *slack.Slack
	bot      *bots.Bot
	c, other casebook.Case
}

type options struct {
	workers     int
	maxFileSize int64
}

func newEnv(t testing.TB, o options) *env {
	t.Helper()
	ctx := t.Context()
	st := pgtest.Store(t)
	bl, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if o.maxFileSize == 0 {
		o.maxFileSize = 5 << 20
	}
	// Logs go to the test's output, shown when it fails or with -v; a benchmark's
	// would drown its figures.
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	if _, ok := t.(*testing.B); ok {
		log = slog.New(slog.DiscardHandler)
	}
	svc := casebook.NewService(st, bl, casebook.Options{Refs: casebook.DefaultRefFormat, MaxFileSize: o.maxFileSize, Logger: log})
	e := &env{st: st, fake: slacktest.New()}
	t.Cleanup(e.fake.Close)
	owner, err := st.AddUser(ctx, postgres.NewUser{Email: "owner@casebook.test", Name: "Olive Owner", Staff: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"Acme Clinic", "Other Clinic"} {
		org, err := st.AddOrg(ctx, name, "")
		if err != nil {
			t.Fatal(err)
		}
		cust, err := st.AddUser(ctx, postgres.NewUser{OrgID: &org.ID, Email: name[:4] + "@clinic.test"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := st.OpenCase(ctx, postgres.NewCase{OrgID: org.ID, RequesterID: cust.ID, OwnerID: owner.ID, Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			e.c = c
			if err := st.Bind(ctx, casebook.Binding{Platform: casebook.SourceSlack, Workspace: slacktest.TeamID, Channel: channel, OrgID: org.ID}); err != nil {
				t.Fatal(err)
			}
		} else {
			e.other = c
		}
	}
	e.slack, err = slack.New(slack.Config{BotToken: slacktest.BotToken, AppToken: slacktest.AppToken,
		SigningSecret: signingSecret, APIURL: e.fake.APIURL(), Workers: o.workers, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.slack.Check(ctx); err != nil {
		t.Fatal(err)
	}
	e.bot, err = bots.New(st, svc, bots.Options{Reopen: e.slack.Reopen, Escape: slack.Escape, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := e.slack.Run(rctx, e.bot); !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return e
}

// upload sends a file_share event for a new file of size bytes and returns the file.
func (e *env) upload(eventID, ts, thread, text string, f slacktest.File) goslack.File {
	obj := e.fake.AddFile(f)
	e.fake.SendEvent(eventID, slacktest.MessageEvent{Type: "message", SubType: "file_share", Channel: channel, ChannelType: "channel",
		User: customer, Text: text, TS: ts, ThreadTS: thread, Files: []goslack.File{obj}, Upload: true})
	return obj
}

func (e *env) say(eventID, ts, thread, text string) {
	e.fake.SendEvent(eventID, slacktest.MessageEvent{Type: "message", Channel: channel, ChannelType: "channel",
		User: customer, Text: text, TS: ts, ThreadTS: thread})
}

func pdf(id, name string, size int) slacktest.File {
	b := bytes.Repeat([]byte("%PDF-1.7 casebook test file\n"), size/28+1)[:size]
	return slacktest.File{ID: id, Name: name, Mimetype: "application/pdf", Content: b}
}

// waitPosts waits until the fake has n posts and n reactions-or-more, then returns the posts.
func (e *env) waitPosts(t testing.TB, n int) []slacktest.Post {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := e.fake.Wait(ctx, func(s *slacktest.Server) bool { return len(s.Posts()) >= n }); err != nil {
		t.Fatalf("%v; posts so far: %+v", err, e.fake.Posts())
	}
	return e.fake.Posts()
}

func (e *env) waitReactions(t testing.TB, n int) []slacktest.Reaction {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := e.fake.Wait(ctx, func(s *slacktest.Server) bool { return len(s.Reactions()) >= n }); err != nil {
		t.Fatalf("%v; reactions so far: %+v", err, e.fake.Reactions())
	}
	return e.fake.Reactions()
}

func (e *env) attachments(t testing.TB, c casebook.Case) []casebook.Attachment {
	t.Helper()
	as, err := e.st.AttachmentsForCase(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func names(as []casebook.Attachment) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Filename)
	}
	return out
}

func TestUploadWithCaseInText(t *testing.T) {
	e := newEnv(t, options{})
	f := pdf("F001", "report.pdf", 2_100_000)
	e.upload("Ev1", "1700000001.000100", "", "Here is the report for CASE-000001", f)
	posts := e.waitPosts(t, 1)
	want := []slacktest.Post{{Channel: channel, ThreadTS: "1700000001.000100",
		Text: "Attached `report.pdf` (2.1 MB) to CASE-000001 — " + wantSubject, TS: posts[0].TS}}
	if diff := cmp.Diff(want, posts); diff != "" {
		t.Errorf("posts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]slacktest.Reaction{{Name: "white_check_mark", Channel: channel, Timestamp: "1700000001.000100"}}, e.waitReactions(t, 1)); diff != "" {
		t.Errorf("reactions (-want +got):\n%s", diff)
	}
	as := e.attachments(t, e.c)
	sum := sha256.Sum256(f.Content)
	if len(as) != 1 || as[0].Filename != "report.pdf" || as[0].Size != int64(len(f.Content)) || as[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("attachments = %+v", as)
	}
	tl, err := e.st.Timeline(t.Context(), e.c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if last := tl[len(tl)-1]; last.Source != casebook.SourceSlack || last.ExternalID != "F001" || !strings.Contains(last.Author, customer) {
		t.Errorf("timeline entry = %+v", last)
	}
}

func TestUploadInKnownThread(t *testing.T) {
	e := newEnv(t, options{})
	e.upload("Ev1", "100.1", "", "CASE-1", pdf("F1", "first.pdf", 100))
	e.waitPosts(t, 1)
	e.upload("Ev2", "100.2", "100.1", "one more", pdf("F2", "second.pdf", 100))
	posts := e.waitPosts(t, 2)
	if p := posts[1]; p.ThreadTS != "100.1" || p.Text != "Attached `second.pdf` (100 bytes) to CASE-000001 — "+wantSubject {
		t.Errorf("second post = %+v", p)
	}
	if diff := cmp.Diff([]string{"first.pdf", "second.pdf"}, names(e.attachments(t, e.c))); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
}

func TestNoCaseThenAnswer(t *testing.T) {
	e := newEnv(t, options{})
	e.upload("Ev1", "200.1", "", "the scan you asked for", pdf("F1", "scan.pdf", 100))
	posts := e.waitPosts(t, 1)
	if p := posts[0]; p.ThreadTS != "200.1" || !strings.HasPrefix(p.Text, "Which case is this for?") {
		t.Fatalf("question = %+v", p)
	}
	if n := len(e.attachments(t, e.c)); n != 0 {
		t.Fatalf("%d attached before the answer", n)
	}
	e.say("Ev2", "200.2", "200.1", "Sorry, CASE-000001")
	posts = e.waitPosts(t, 2)
	if p := posts[1]; p.ThreadTS != "200.1" || p.Text != "Attached `scan.pdf` (100 bytes) to CASE-000001 — "+wantSubject {
		t.Errorf("answer post = %+v", p)
	}
	if diff := cmp.Diff([]slacktest.Reaction{{Name: "white_check_mark", Channel: channel, Timestamp: "200.2"}}, e.waitReactions(t, 1)); diff != "" {
		t.Errorf("reactions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"scan.pdf"}, names(e.attachments(t, e.c))); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
}

func TestWrongOrgCase(t *testing.T) {
	e := newEnv(t, options{})
	e.upload("Ev1", "300.1", "", "CASE-000002", pdf("F1", "a.pdf", 100))
	posts := e.waitPosts(t, 1)
	if p := posts[0]; p.Text != "I can't find CASE-000002 for this channel: check the case number and upload `a.pdf` again." {
		t.Errorf("post = %+v", p)
	}
	if diff := cmp.Diff([]slacktest.Reaction{{Name: "x", Channel: channel, Timestamp: "300.1"}}, e.waitReactions(t, 1)); diff != "" {
		t.Errorf("reactions (-want +got):\n%s", diff)
	}
	if n := len(e.attachments(t, e.other)); n != 0 {
		t.Errorf("other org's case has %d attachments", n)
	}
}

// TestIgnored sends what the bot must ignore, then an upload in the same channel;
// with one worker, events are handled in order, so when the upload is answered the
// others were handled and must have left no trace.
func TestIgnored(t *testing.T) {
	e := newEnv(t, options{workers: 1})
	unbound := e.fake.AddFile(pdf("F1", "a.pdf", 100))
	e.fake.SendEvent("Ev1", slacktest.MessageEvent{Type: "message", SubType: "file_share", Channel: "C0UNBOUND", User: customer, Text: "CASE-1", TS: "1.1", Files: []goslack.File{unbound}})
	own := e.fake.AddFile(pdf("F2", "b.pdf", 100))
	e.fake.SendEvent("Ev2", slacktest.MessageEvent{Type: "message", SubType: "file_share", Channel: channel, User: slacktest.BotUserID, BotID: slacktest.BotID, Text: "CASE-1", TS: "1.2", Files: []goslack.File{own}})
	edited := e.fake.AddFile(pdf("F3", "c.pdf", 100))
	e.fake.SendEvent("Ev3", slacktest.MessageEvent{Type: "message", SubType: "message_changed", Channel: channel, TS: "1.3",
		Message: slacktest.MessageEvent{Type: "message", User: customer, Text: "CASE-1", TS: "1.0", Files: []goslack.File{edited}}})
	e.fake.SendEvent("Ev4", slacktest.MessageEvent{Type: "message", SubType: "message_deleted", Channel: channel, TS: "1.4"})
	external := e.fake.AddFile(slacktest.File{ID: "F5", Name: "drive.gdoc", External: true})
	e.fake.SendEvent("Ev5", slacktest.MessageEvent{Type: "message", SubType: "file_share", Channel: channel, User: customer, Text: "CASE-1", TS: "1.5", Files: []goslack.File{external}})
	e.upload("Ev6", "1.6", "", "CASE-1", pdf("F6", "marker.pdf", 100))

	posts := e.waitPosts(t, 1)
	if len(posts) != 1 || posts[0].ThreadTS != "1.6" {
		t.Errorf("posts = %+v", posts)
	}
	if diff := cmp.Diff([]string{"marker.pdf"}, names(e.attachments(t, e.c))); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
}

func TestRedeliveredEnvelopeStoredOnce(t *testing.T) {
	e := newEnv(t, options{workers: 1})
	f := pdf("F1", "a.pdf", 100)
	e.upload("Ev1", "400.1", "", "CASE-1", f)
	e.upload("Ev1", "400.1", "", "CASE-1", f)
	// Slack also resends under the same event id after a missing ack; a new event id
	// for the same file (a client retry) must not store it either.
	e.upload("Ev1b", "400.1", "", "CASE-1", f)
	e.upload("Ev2", "400.2", "", "CASE-1", pdf("F2", "marker.pdf", 100))
	posts := e.waitPosts(t, 2)
	if len(posts) != 2 || posts[1].ThreadTS != "400.2" {
		t.Errorf("posts = %+v", posts)
	}
	if diff := cmp.Diff([]string{"a.pdf", "marker.pdf"}, names(e.attachments(t, e.c))); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
}

func TestOversizedFile(t *testing.T) {
	e := newEnv(t, options{maxFileSize: 1_000_000})
	e.upload("Ev1", "500.1", "", "CASE-1", pdf("F1", "huge.pdf", 1_500_000))
	posts := e.waitPosts(t, 1)
	if p := posts[0]; p.Text != "`huge.pdf` (1.5 MB) is larger than the 1.0 MB limit: send a smaller file or split it." {
		t.Errorf("post = %+v", p)
	}
	if r := e.waitReactions(t, 1); r[0].Name != "x" {
		t.Errorf("reactions = %+v", r)
	}
	if n := e.fake.Downloads(); n != 0 {
		t.Errorf("downloaded %d files declared too large", n)
	}
	if n := len(e.attachments(t, e.c)); n != 0 {
		t.Errorf("%d attachments", n)
	}
}

func TestSignInPageInsteadOfFile(t *testing.T) {
	withoutFilesRead := slices.DeleteFunc(slices.Clone(slacktest.BotScopes), func(s string) bool { return s == "files:read" })
	tests := []struct {
		name   string
		file   func(f slacktest.File) slacktest.File
		scopes []string
	}{
		{"sign-in page", func(f slacktest.File) slacktest.File { f.SignIn = true; return f }, slacktest.BotScopes},
		{"scope removed after start", func(f slacktest.File) slacktest.File { return f }, withoutFilesRead},
		{"page served without a redirect", func(f slacktest.File) slacktest.File {
			f.Content = []byte("\n<!DOCTYPE html><html><title>Slack</title></html>")
			return f
		}, slacktest.BotScopes},
		{"files.info without the scope", func(f slacktest.File) slacktest.File { f.CheckFileInfo = true; return f }, withoutFilesRead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, options{})
			e.fake.SetScopes(tt.scopes, []string{"connections:write"})
			e.upload("Ev1", "600.1", "", "CASE-1", tt.file(pdf("F1", "a.pdf", 100)))
			posts := e.waitPosts(t, 1)
			want := "`a.pdf` was not attached: the casebook Slack app may not read files (it lacks the files:read scope): ask your Slack admin to add it and reinstall the app, then upload the file again."
			if p := posts[0]; p.Text != want {
				t.Errorf("post = %q\nwant   %q", p.Text, want)
			}
			if r := e.waitReactions(t, 1); r[0].Name != "x" {
				t.Errorf("reactions = %+v", r)
			}
			if n := len(e.attachments(t, e.c)); n != 0 {
				t.Errorf("the sign-in page was stored: %d attachments", n)
			}
		})
	}
}

func TestCheckFileInfo(t *testing.T) {
	e := newEnv(t, options{})
	f := pdf("F1", "connect.pdf", 100)
	f.CheckFileInfo = true
	obj := e.upload("Ev1", "650.1", "", "CASE-1", f)
	if obj.URLPrivateDownload != "" || obj.FileAccess != "check_file_info" {
		t.Fatalf("event file = %+v", obj)
	}
	e.waitPosts(t, 1)
	if diff := cmp.Diff([]string{"connect.pdf"}, names(e.attachments(t, e.c))); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
}

func TestSocketDroppedMidSession(t *testing.T) {
	e := newEnv(t, options{})
	e.upload("Ev1", "700.1", "", "CASE-1", pdf("F1", "before.pdf", 100))
	e.waitPosts(t, 1)
	e.fake.DropSocket()
	// Sent while no socket is up: Slack keeps it and delivers it on the next connection.
	e.upload("Ev2", "700.2", "", "CASE-1", pdf("F2", "during.pdf", 100))
	e.waitPosts(t, 2)
	e.upload("Ev3", "700.3", "", "CASE-1", pdf("F3", "after.pdf", 100))
	e.waitPosts(t, 3)
	if n := e.fake.Connections(); n < 2 {
		t.Errorf("%d connections, want a reconnect", n)
	}
	got := names(e.attachments(t, e.c))
	slices.Sort(got)
	if diff := cmp.Diff([]string{"after.pdf", "before.pdf", "during.pdf"}, got); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
}

// TestAckLostWithSocket loses the ack of an event already handled, then drops the
// socket: Slack delivers the event again on the new connection, and it is neither
// stored nor answered twice.
func TestAckLostWithSocket(t *testing.T) {
	e := newEnv(t, options{workers: 1})
	e.fake.LoseAcks(1)
	f := e.fake.AddFile(pdf("F1", "once.pdf", 100))
	id := e.fake.SendEvent("Ev1", slacktest.MessageEvent{Type: "message", SubType: "file_share", Channel: channel, User: customer, Text: "CASE-1", TS: "750.1", Files: []goslack.File{f}})
	e.waitPosts(t, 1)
	e.fake.DropSocket()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// The redelivery is acknowledged on the second connection.
	if err := e.fake.Wait(ctx, func(s *slacktest.Server) bool { _, ok := s.Acked(id); return ok && s.Connections() >= 2 }); err != nil {
		t.Fatal(err)
	}
	e.upload("Ev2", "750.2", "", "CASE-1", pdf("F2", "marker.pdf", 100))
	posts := e.waitPosts(t, 2)
	if len(posts) != 2 || posts[1].ThreadTS != "750.2" {
		t.Errorf("posts = %+v", posts)
	}
	if diff := cmp.Diff([]string{"once.pdf", "marker.pdf"}, names(e.attachments(t, e.c))); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
}

func TestRateLimitedReply(t *testing.T) {
	e := newEnv(t, options{})
	e.fake.RateLimit("chat.postMessage", 1)
	e.upload("Ev1", "800.1", "", "CASE-1", pdf("F1", "a.pdf", 100))
	if p := e.waitPosts(t, 1); !strings.HasPrefix(p[0].Text, "Attached `a.pdf`") {
		t.Errorf("post after Retry-After = %+v", p[0])
	}
}

func TestSlashCommand(t *testing.T) {
	e := newEnv(t, options{})
	id := e.fake.SendSlashCommand(channel, customer, "/case", "CASE-000001")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := e.fake.Wait(ctx, func(s *slacktest.Server) bool { _, ok := s.Acked(id); return ok }); err != nil {
		t.Fatal(err)
	}
	payload, _ := e.fake.Acked(id)
	var got map[string]string
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatalf("ack payload %s: %v", payload, err)
	}
	want := map[string]string{"response_type": "ephemeral", "text": "CASE-000001 — " + wantSubject + "\nStatus: open · Owner: Olive Owner · Files: 0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
}

func TestEventsAPI(t *testing.T) {
	e := newEnv(t, options{})
	srv := httptest.NewServer(e.slack.EventsHandler(e.bot))
	t.Cleanup(srv.Close)
	obj := e.fake.AddFile(pdf("F1", "signed.pdf", 100))
	body := slacktest.Callback("EvHTTP", slacktest.MessageEvent{Type: "message", SubType: "file_share", Channel: channel, User: customer, Text: "CASE-1", TS: "900.1", Files: []goslack.File{obj}})
	challenge := []byte(`{"token":"x","challenge":"c4ll3nge","type":"url_verification"}`)
	command := []byte(url.Values{"command": {"/case"}, "text": {"CASE-2"}, "team_id": {slacktest.TeamID}, "channel_id": {channel}}.Encode())

	tests := []struct {
		name     string
		body     []byte
		header   http.Header
		form     bool
		wantCode int
		wantBody string
	}{
		{"bad signature", body, slacktest.Sign("not-the-secret", time.Now(), body), false, http.StatusUnauthorized, ""},
		{"stale signature", body, slacktest.Sign(signingSecret, time.Now().Add(-6*time.Minute), body), false, http.StatusUnauthorized, ""},
		{"body changed", append(slices.Clone(body), ' '), slacktest.Sign(signingSecret, time.Now(), body), false, http.StatusUnauthorized, ""},
		{"no signature", body, http.Header{}, false, http.StatusUnauthorized, ""},
		{"url verification", challenge, slacktest.Sign(signingSecret, time.Now(), challenge), false, http.StatusOK, "c4ll3nge"},
		{"slash command", command, slacktest.Sign(signingSecret, time.Now(), command), true, http.StatusOK,
			`{"response_type":"ephemeral","text":"I can't find CASE-000002 for this channel: check the case number."}` + "\n"},
		{"good signature", body, slacktest.Sign(signingSecret, time.Now(), body), false, http.StatusOK, ""},
		{"retry of the same event", body, slacktest.Sign(signingSecret, time.Now(), body), false, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tt.header.Clone()
			req.Header.Set("Content-Type", "application/json")
			if tt.form {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			if resp.StatusCode != tt.wantCode || (tt.wantBody != "" && b.String() != tt.wantBody) {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, b.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
	posts := e.waitPosts(t, 1)
	if p := posts[0]; p.ThreadTS != "900.1" || !strings.HasPrefix(p.Text, "Attached `signed.pdf`") {
		t.Errorf("post = %+v", p)
	}
	if diff := cmp.Diff([]string{"signed.pdf"}, names(e.attachments(t, e.c))); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
}

func TestCheckNamesMissingScopes(t *testing.T) {
	tests := []struct {
		name      string
		scopes    []string
		appScopes []string
		want      string
	}{
		{"all granted", slacktest.BotScopes, []string{"connections:write"}, ""},
		{"no files:read", slices.DeleteFunc(slices.Clone(slacktest.BotScopes), func(s string) bool { return s == "files:read" }), []string{"connections:write"},
			"slack: the bot token lacks the scope(s) files:read: add them under OAuth & Permissions and reinstall the app"},
		{"neither history", []string{"files:read", "chat:write", "reactions:write", "commands"}, []string{"connections:write"},
			"slack: the bot token lacks the scope(s) channels:history, groups:history: add them under OAuth & Permissions and reinstall the app"},
		{"app token without connections:write", slacktest.BotScopes, nil,
			"slack: app-level token (needs connections:write): missing scope connections:write: missing_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := slacktest.New()
			t.Cleanup(fake.Close)
			fake.SetScopes(tt.scopes, tt.appScopes)
			s, err := slack.New(slack.Config{BotToken: slacktest.BotToken, AppToken: slacktest.AppToken, APIURL: fake.APIURL()})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Check(t.Context())
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Check = %q, want %q", got, tt.want)
			}
		})
	}
}

// A disabled account's Slack identity is refused with the reason, even in a channel
// bound to its org.
func TestDisabledUserRefused(t *testing.T) {
	e := newEnv(t, options{})
	ctx := t.Context()
	org := e.c.OrgID
	u, err := e.st.AddUser(ctx, postgres.NewUser{OrgID: &org, Email: "cara@clinic.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.AddIdentity(ctx, casebook.Identity{Kind: casebook.IdentitySlack, Value: customer, UserID: u.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.SetUserDisabled(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	e.upload("Ev1", "310.1", "", "CASE-000001", pdf("F1", "a.pdf", 100))
	posts := e.waitPosts(t, 1)
	if p := posts[0]; p.Text != "`a.pdf` was not attached: your casebook account is disabled. Ask your support contact to enable it." {
		t.Errorf("post = %+v", p)
	}
	if diff := cmp.Diff([]slacktest.Reaction{{Name: "x", Channel: channel, Timestamp: "310.1"}}, e.waitReactions(t, 1)); diff != "" {
		t.Errorf("reactions (-want +got):\n%s", diff)
	}
	if n := len(e.attachments(t, e.c)); n != 0 {
		t.Errorf("the disabled user's file was attached (%d)", n)
	}
}
