package bots_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/bots"
	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var (
	_ bots.Store = (*postgres.Store)(nil)
	_ bots.Cases = (*casebook.Service)(nil)
)

const (
	workspace = "T1"
	channel   = "C1"
	user      = "U1"
)

// env is one org with a bound channel and an open case, a second org with its own
// case, and a bot over them.
type env struct {
	st        *postgres.Store
	bot       *bots.Bot
	c, other  casebook.Case
	mu        sync.Mutex
	now       time.Time
	content   map[string][]byte
	downloads map[string]int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newScanningEnv(t, nil)
}

// newScanningEnv is newEnv with the write path scanning through scanner, if not nil.
func newScanningEnv(t *testing.T, scanner casebook.Scanner) *env {
	t.Helper()
	ctx := t.Context()
	st := pgtest.Store(t)
	bl, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := casebook.NewService(st, bl, casebook.Options{Refs: casebook.DefaultRefFormat, MaxFileSize: 3 << 20,
		Scanner: scanner, MalwareLog: st})
	e := &env{st: st, now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), content: map[string][]byte{}, downloads: map[string]int{}}
	owner, err := st.AddUser(ctx, postgres.NewUser{Email: "owner@casebook.test", Name: "Olive Owner", Staff: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"Acme Clinic", "Other Clinic"} {
		org, err := st.AddOrg(ctx, name, "")
		if err != nil {
			t.Fatal(err)
		}
		cust, err := st.AddUser(ctx, postgres.NewUser{OrgID: &org.ID, Email: "c" + string(rune('a'+i)) + "@clinic.test"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := st.OpenCase(ctx, postgres.NewCase{OrgID: org.ID, RequesterID: cust.ID, OwnerID: owner.ID, Subject: "Scanner <fails> & " + name})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			e.c = c
			if err := st.Bind(ctx, casebook.Binding{Platform: casebook.SourceSlack, Channel: channel, OrgID: org.ID}); err != nil {
				t.Fatal(err)
			}
		} else {
			e.other = c
		}
	}
	e.bot, err = bots.New(st, svc, bots.Options{
		Reopen: func(f bots.File) bots.Opener { return e.opener(f.ID) },
		Escape: strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace,
		Now: func() time.Time {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.now
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func (e *env) opener(id string) bots.Opener {
	return func(ctx context.Context, limit int64) (io.ReadCloser, error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.downloads[id]++
		return io.NopCloser(bytes.NewReader(e.content[id])), nil
	}
}

func (e *env) file(id, name string, size int) bots.File {
	b := bytes.Repeat([]byte("x"), size)
	e.mu.Lock()
	e.content[id] = b
	e.mu.Unlock()
	return bots.File{ID: id, Name: name, ContentType: "application/pdf", Size: int64(size), URL: "https://files.test/" + id, Open: e.opener(id)}
}

func (e *env) attachments(t *testing.T, c casebook.Case) []string {
	t.Helper()
	as, err := e.st.AttachmentsForCase(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range as {
		names = append(names, a.Filename)
	}
	return names
}

func msg(id, thread, text string, files ...bots.File) bots.Message {
	return bots.Message{Platform: casebook.SourceSlack, Workspace: workspace, Channel: channel, Thread: thread,
		MessageID: id, EventID: "Ev" + id, AuthorID: user, AuthorName: "Cara", Text: text, Files: files}
}

func TestAttachWithCaseInText(t *testing.T) {
	e := newEnv(t)
	got := e.bot.HandleMessage(t.Context(), msg("100.1", "", "here you go CASE-000001", e.file("F1", "report.pdf", 2_100_000)))
	want := bots.Reply{Kind: bots.ReplyAttached, Thread: "100.1", Case: 1, Attached: 1,
		Text: "Attached `report.pdf` (2.1 MB) to CASE-000001 — Scanner &lt;fails&gt; &amp; Acme Clinic"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"report.pdf"}, e.attachments(t, e.c)); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
	// The bot confirmed in a new thread rooted at the upload: that thread now knows its case.
	n, err := e.st.ThreadCase(t.Context(), casebook.SourceSlack, workspace, channel, "100.1")
	if err != nil || n != 1 {
		t.Errorf("thread case = %d, %v; want 1", n, err)
	}
	tl, err := e.st.Timeline(t.Context(), e.c.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := tl[len(tl)-1]
	if last.Source != casebook.SourceSlack || last.ExternalID != "F1" || last.Body != "here you go CASE-000001" || !strings.Contains(last.Author, user) {
		t.Errorf("timeline entry = %+v", last)
	}
}

func TestUploadInKnownThread(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.bot.HandleMessage(ctx, msg("100.1", "", "CASE-1", e.file("F1", "a.pdf", 10)))
	got := e.bot.HandleMessage(ctx, msg("100.2", "100.1", "and the second one", e.file("F2", "b.pdf", 1500)))
	want := bots.Reply{Kind: bots.ReplyAttached, Thread: "100.1", Case: 1, Attached: 1,
		Text: "Attached `b.pdf` (1.5 kB) to CASE-000001 — Scanner &lt;fails&gt; &amp; Acme Clinic"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}
	// A thread unknown to the bot is not guessed from.
	got = e.bot.HandleMessage(ctx, msg("100.3", "99.9", "another", e.file("F3", "c.pdf", 10)))
	if got.Kind != bots.ReplyAsk {
		t.Errorf("upload in unknown thread: kind %q, want ask", got.Kind)
	}
	if diff := cmp.Diff([]string{"a.pdf", "b.pdf"}, e.attachments(t, e.c)); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
}

func TestAskThenAnswer(t *testing.T) {
	tests := []struct {
		name   string
		answer bots.Message
		after  time.Duration
		want   []string
	}{
		{"answer in the thread", msg("200.2", "200.1", "it's CASE-000001"), time.Minute, []string{"scan.png"}},
		{"answer at the top by the uploader", msg("200.2", "", "CASE-1 sorry"), time.Minute, []string{"scan.png"}},
		{"answer at the top by someone else", func() bots.Message { m := msg("200.2", "", "CASE-1"); m.AuthorID = "U2"; return m }(), time.Minute, nil},
		{"answer after the hold expired", msg("200.2", "200.1", "CASE-1"), 16 * time.Minute, nil},
		{"answer naming a case of another org", msg("200.2", "200.1", "CASE-2"), time.Minute, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := t.Context()
			ask := e.bot.HandleMessage(ctx, msg("200.1", "", "see attached", e.file("F1", "scan.png", 10)))
			want := bots.Reply{Kind: bots.ReplyAsk, Thread: "200.1",
				Text: "Which case is this for? Reply in this thread with the case number (like CASE-000123) within 15 minutes."}
			if diff := cmp.Diff(want, ask); diff != "" {
				t.Fatalf("question (-want +got):\n%s", diff)
			}
			if got := e.attachments(t, e.c); len(got) != 0 {
				t.Fatalf("attached before the answer: %v", got)
			}
			e.advance(tt.after)
			got := e.bot.HandleMessage(ctx, tt.answer)
			if diff := cmp.Diff(tt.want, e.attachments(t, e.c)); diff != "" {
				t.Errorf("attachments (-want +got):\n%s", diff)
			}
			if tt.want != nil && (got.Kind != bots.ReplyAttached || got.Thread != tt.answer.ReplyThread()) {
				t.Errorf("answer reply = %+v", got)
			}
			if got := e.attachments(t, e.other); len(got) != 0 {
				t.Errorf("other org's case got %v", got)
			}
		})
	}
}

func TestTwoCasesNamedAsks(t *testing.T) {
	e := newEnv(t)
	got := e.bot.HandleMessage(t.Context(), msg("300.1", "", "for CASE-1 or CASE-2?", e.file("F1", "a.pdf", 10)))
	if got.Kind != bots.ReplyAsk || !strings.HasPrefix(got.Text, "This message names CASE-000001 and CASE-000002. Which case is this for?") {
		t.Errorf("reply = %+v", got)
	}
	if n := len(e.attachments(t, e.c)) + len(e.attachments(t, e.other)); n != 0 {
		t.Errorf("%d files attached on a guess", n)
	}
	got = e.bot.HandleMessage(t.Context(), msg("300.2", "300.1", "CASE-1"))
	if got.Kind != bots.ReplyAttached {
		t.Errorf("answer reply = %+v", got)
	}
}

func TestOtherOrgCaseLooksUnknown(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	other := e.bot.HandleMessage(ctx, msg("400.1", "", "CASE-2", e.file("F1", "a.pdf", 10)))
	unknown := e.bot.HandleMessage(ctx, msg("400.2", "", "CASE-3", e.file("F2", "a.pdf", 10)))
	if other.Kind != bots.ReplyRefused || other.Refused != 1 {
		t.Errorf("other org's case: %+v", other)
	}
	other.Text = strings.ReplaceAll(other.Text, "CASE-000002", "CASE-00000N")
	unknown.Text = strings.ReplaceAll(unknown.Text, "CASE-000003", "CASE-00000N")
	if other.Text != unknown.Text {
		t.Errorf("another org's case is answered %q, an unknown case %q", other.Text, unknown.Text)
	}
	if got := e.attachments(t, e.other); len(got) != 0 {
		t.Errorf("other org's case got %v", got)
	}
}

func TestUnboundChannelIgnored(t *testing.T) {
	e := newEnv(t)
	m := msg("500.1", "", "CASE-1", e.file("F1", "a.pdf", 10))
	m.Channel = "C-unbound"
	if got := e.bot.HandleMessage(t.Context(), m); got != (bots.Reply{}) {
		t.Errorf("reply = %+v, want none", got)
	}
	if got := e.attachments(t, e.c); len(got) != 0 {
		t.Errorf("attached from an unbound channel: %v", got)
	}
}

func TestRedeliveryStoresOnce(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	m := msg("600.1", "", "CASE-1", e.file("F1", "a.pdf", 10))
	if got := e.bot.HandleMessage(ctx, m); got.Kind != bots.ReplyAttached {
		t.Fatalf("first delivery: %+v", got)
	}
	// The same event again, and the same file under another event id (a retry that
	// Slack numbered anew): neither stores nor answers.
	if got := e.bot.HandleMessage(ctx, m); got != (bots.Reply{}) {
		t.Errorf("same event: %+v", got)
	}
	m.EventID = "Ev-other"
	if got := e.bot.HandleMessage(ctx, m); got != (bots.Reply{}) {
		t.Errorf("same file: %+v", got)
	}
	if diff := cmp.Diff([]string{"a.pdf"}, e.attachments(t, e.c)); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name string
		file func(e *env) bots.File
		want string
	}{
		{"declared too large", func(e *env) bots.File {
			f := e.file("F1", "huge.iso", 10)
			f.Size = 4_000_000
			return f
		}, "`huge.iso` (4.0 MB) is larger than the 3.1 MB limit: send a smaller file or split it."},
		{"larger than declared", func(e *env) bots.File {
			f := e.file("F1", "huge.iso", 4<<20)
			f.Size = 10
			return f
		}, "`huge.iso` is larger than the 3.1 MB limit: send a smaller file or split it."},
		{"adapter explains", func(e *env) bots.File {
			f := e.file("F1", "a.pdf", 10)
			f.Open = func(context.Context, int64) (io.ReadCloser, error) {
				return nil, &bots.PublicError{Public: "the app may not read files.", Err: errors.New("sign-in page")}
			}
			return f
		}, "`a.pdf` was not attached: the app may not read files."},
		{"executable", func(e *env) bots.File {
			f := e.file("F1", "invoice.pdf", 10)
			e.content["F1"] = append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 64)...)
			return f
		}, "`invoice.pdf` was not attached: programs, scripts and web pages are not accepted. Send a PDF, an image or a document instead."},
		{"html renamed pdf", func(e *env) bots.File {
			f := e.file("F1", "scan.pdf", 10)
			e.content["F1"] = []byte("<!DOCTYPE html><html><body><script>location='https://x.test'</script></body></html>")
			return f
		}, "`scan.pdf` was not attached: programs, scripts and web pages are not accepted. Send a PDF, an image or a document instead."},
		{"our failure", func(e *env) bots.File {
			f := e.file("F1", "a`b.pdf", 10)
			f.Open = func(context.Context, int64) (io.ReadCloser, error) { return nil, errors.New("connection reset") }
			return f
		}, "`a'b.pdf` was not attached because of an error on our side: please upload it again in a few minutes."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			got := e.bot.HandleMessage(t.Context(), msg("700.1", "", "CASE-1", tt.file(e)))
			want := bots.Reply{Kind: bots.ReplyRefused, Thread: "700.1", Case: 1, Refused: 1, Text: tt.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
			if got := e.attachments(t, e.c); len(got) != 0 {
				t.Errorf("refused file attached: %v", got)
			}
		})
	}
}

func TestDeclaredTooLargeIsNotDownloaded(t *testing.T) {
	e := newEnv(t)
	f := e.file("F1", "huge.iso", 10)
	f.Size = 1 << 30
	e.bot.HandleMessage(t.Context(), msg("700.1", "", "CASE-1", f))
	if n := e.downloads["F1"]; n != 0 {
		t.Errorf("downloaded %d times", n)
	}
}

func TestClosedCase(t *testing.T) {
	e := newEnv(t)
	if _, err := e.st.SetCaseStatus(t.Context(), 1, casebook.StatusClosed); err != nil {
		t.Fatal(err)
	}
	got := e.bot.HandleMessage(t.Context(), msg("800.1", "", "CASE-1", e.file("F1", "a.pdf", 10)))
	if got.Kind != bots.ReplyRefused || !strings.HasPrefix(got.Text, "CASE-000001 is closed") {
		t.Errorf("reply = %+v", got)
	}
}

func TestMixedFiles(t *testing.T) {
	e := newEnv(t)
	big := e.file("F2", "big.iso", 10)
	big.Size = 5_000_000
	got := e.bot.HandleMessage(t.Context(), msg("900.1", "", "CASE-1", e.file("F1", "a.pdf", 10), big))
	if got.Kind != bots.ReplyAttached || got.Attached != 1 || got.Refused != 1 || strings.Count(got.Text, "\n") != 1 {
		t.Errorf("reply = %+v", got)
	}
}

func TestMessagesWithoutFiles(t *testing.T) {
	e := newEnv(t)
	for _, text := range []string{"hello", "about CASE-1", "CASE-1 and CASE-2"} {
		if got := e.bot.HandleMessage(t.Context(), msg("950.1", "", text)); got != (bots.Reply{}) {
			t.Errorf("%q: reply %+v, want none", text, got)
		}
	}
}

func TestCaseStatus(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		channel, arg, want string
	}{
		{channel, "CASE-000001", "CASE-000001 — Scanner &lt;fails&gt; &amp; Acme Clinic\nStatus: open · Owner: Olive Owner · Files: 0"},
		{channel, "1", "CASE-000001 — Scanner &lt;fails&gt; &amp; Acme Clinic\nStatus: open · Owner: Olive Owner · Files: 0"},
		{channel, "CASE-2", "I can't find CASE-000002 for this channel: check the case number."},
		{channel, "CASE-99", "I can't find CASE-000099 for this channel: check the case number."},
		{channel, "", "Name one case, like `/case CASE-000123`."},
		{"C-unbound", "CASE-1", "This channel is not linked to an organisation: ask your support contact to bind it."},
	}
	for _, tt := range tests {
		t.Run(tt.channel+" "+tt.arg, func(t *testing.T) {
			if got := e.bot.CaseStatus(t.Context(), casebook.SourceSlack, workspace, tt.channel, tt.arg); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRunPurgesExpired(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.bot.HandleMessage(ctx, msg("200.1", "", "see attached", e.file("F1", "scan.png", 10)))
	e.advance(time.Hour)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- e.bot.Run(rctx) }()
	for {
		var n int
		if err := e.st.DB().GetContext(ctx, &n, `SELECT count(*) FROM chat_pending_files`); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
}
