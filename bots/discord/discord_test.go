package discord

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/bots/discord/discordtest"
	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	guild    = "300000000000000001"
	channel  = "300000000000000002"
	unbound  = "300000000000000003"
	userID   = "300000000000000004"
	maxBytes = 64 << 10
)

// env is a bot running against a fake Discord, with two orgs: Acme (whose channel is
// bound) and Globex, each with one case.
type env struct {
	t     testing.TB
	fake  *discordtest.Server
	st    *postgres.Store
	blobs *blob.Store
	bot   *Bot
	acme  casebook.Case // the bound org's case
	other casebook.Case // a case of another org
	refs  casebook.RefFormat
	svc   *casebook.Service
	opts  envOptions
	// stop stops the running bot.
	stop func()
}

func newEnv(t testing.TB) *env {
	t.Helper()
	// One worker: messages are handled in the order posted, so a test can tell that a
	// message was ignored once a later one is answered.
	return newEnvWith(t, envOptions{workers: 1, logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
}

// envOptions vary the env for the benchmark.
type envOptions struct {
	workers int
	logger  *slog.Logger
	// channels are bound to Acme besides channel.
	channels []string
	// heartbeat is the interval the gateway asks for; Discord's when zero.
	heartbeat time.Duration
}

func newEnvWith(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx := t.Context()
	st := pgtest.Store(t)
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, blobs: blobs, refs: casebook.DefaultRefFormat}
	svc := casebook.NewService(st, blobs, casebook.Options{Refs: e.refs, MaxFileSize: maxBytes})
	staff, err := st.AddUser(ctx, postgres.NewUser{Email: "owner@support.example", Staff: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"Acme", "Globex"} {
		org, err := st.AddOrg(ctx, name, strings.ToLower(name)+".example")
		if err != nil {
			t.Fatal(err)
		}
		cust, err := st.AddUser(ctx, postgres.NewUser{OrgID: &org.ID, Email: "pat@" + org.Domain})
		if err != nil {
			t.Fatal(err)
		}
		c, err := st.OpenCase(ctx, postgres.NewCase{OrgID: org.ID, RequesterID: cust.ID, OwnerID: staff.ID, Subject: name + " scanner"})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			e.acme = c
			for _, ch := range append([]string{channel}, o.channels...) {
				if err := st.Bind(ctx, casebook.Binding{Platform: casebook.SourceDiscord, Workspace: guild, Channel: ch, OrgID: org.ID}); err != nil {
					t.Fatal(err)
				}
			}
		} else {
			e.other = c
		}
	}

	e.fake = discordtest.New(t, discordtest.Options{HeartbeatInterval: o.heartbeat})
	e.fake.AddChannel(guild, channel)
	e.fake.AddChannel(guild, unbound)
	for _, ch := range o.channels {
		e.fake.AddChannel(guild, ch)
	}
	e.svc, e.opts = svc, o
	e.stop = e.start()
	e.fake.Ready()
	e.fake.Wait("the /case command", func() bool { return len(e.fake.Commands()) == 1 })
	return e
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// start runs a bot, an instance, on the env's database, blob store and fake Discord
// until the test ends or the returned stop is called.
func (e *env) start() (stop func()) {
	t := e.t
	b, err := New(Config{
		Token:   e.fake.Token(),
		AppID:   e.fake.AppID(),
		APIURL:  e.fake.URL,
		Held:    e.blobs,
		Workers: e.opts.workers,
		Logger:  e.opts.logger,
	}, e.st, e.svc)
	if err != nil {
		t.Fatal(err)
	}
	e.bot = b
	runCtx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// file puts a file of n random bytes on the CDN for the bound channel.
func (e *env) file(name string, n int) (*discordgo.MessageAttachment, []byte) {
	body := randomBytes(n)
	return e.fake.AddFile(channel, name, "application/pdf", body), body
}

// post sends a message from the customer in the bound channel.
func (e *env) post(content string, atts ...*discordgo.MessageAttachment) string {
	return e.fake.PostMessage(discordtest.Message{GuildID: guild, ChannelID: channel, AuthorID: userID, AuthorName: "pat", Content: content, Attachments: atts})
}

// replyTo waits for the bot's reply to message id.
func (e *env) replyTo(id string) discordtest.Sent {
	e.t.Helper()
	var got discordtest.Sent
	e.fake.Wait("a reply to "+id, func() bool {
		for _, s := range e.fake.Sent() {
			if s.Reference != nil && s.Reference.MessageID == id {
				got = s
				return true
			}
		}
		return false
	})
	return got
}

// repliesTo counts the bot's replies to message id.
func (e *env) repliesTo(id string) int {
	n := 0
	for _, s := range e.fake.Sent() {
		if s.Reference != nil && s.Reference.MessageID == id {
			n++
		}
	}
	return n
}

// reactions lists the emoji the bot put on message id.
func (e *env) reactions(id string) []string {
	var out []string
	for _, r := range e.fake.Reactions() {
		if r.MessageID == id {
			out = append(out, r.Emoji)
		}
	}
	return out
}

// waitReaction waits for the bot's reaction on message id.
func (e *env) waitReaction(id string) []string {
	e.t.Helper()
	e.fake.Wait("a reaction on "+id, func() bool { return len(e.reactions(id)) > 0 })
	return e.reactions(id)
}

// stored returns the contents of the files on case c, by file name.
func (e *env) stored(c casebook.Case) map[string][]byte {
	e.t.Helper()
	atts, err := e.st.AttachmentsForCase(e.t.Context(), c.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, a := range atts {
		r, err := e.blobs.Open(e.t.Context(), a.BlobKey)
		if err != nil {
			e.t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			e.t.Fatal(err)
		}
		if _, dup := out[a.Filename]; dup {
			e.t.Errorf("%s stored twice on %s", a.Filename, e.refs.Format(c.Number))
		}
		out[a.Filename] = b
	}
	return out
}

// sync posts a message that is answered and waits for the answer: with one worker,
// every earlier message has been handled by then.
func (e *env) sync() {
	e.t.Helper()
	att, _ := e.file("sync-"+e.fake.NewID()+".txt", 10)
	e.replyTo(e.post(e.refs.Format(e.acme.Number), att))
}

func TestIdentify(t *testing.T) {
	// A short heartbeat interval: discordgo drops a connection whose heartbeats go
	// unacknowledged for five intervals, so a session that stays up through eight
	// heartbeats proves the acks work.
	e := newEnvWith(t, envOptions{workers: 1, logger: slog.New(slog.DiscardHandler), heartbeat: 250 * time.Millisecond})
	e.fake.Wait("eight heartbeats", func() bool { return e.fake.Heartbeats() >= 8 })
	if n := e.fake.Resumes(); n != 0 {
		t.Errorf("%d resumes, want none", n)
	}
	want := []discordtest.Identify{{Token: "Bot " + e.fake.Token(), Intents: discordgo.IntentsGuilds | discordgo.IntentsGuildMessages | discordgo.IntentMessageContent}}
	if diff := cmp.Diff(want, e.fake.Identifies()); diff != "" {
		t.Errorf("identify (-want +got):\n%s", diff)
	}
	cmds := e.fake.Commands()
	var subs []string
	for _, o := range cmds[0].Options {
		subs = append(subs, o.Name)
	}
	if cmds[0].Name != "case" || !slices.Equal(subs, []string{"attach", "show"}) {
		t.Errorf("registered /%s with %v, want /case attach and show", cmds[0].Name, subs)
	}
}

func TestUploadWithCaseInText(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name    string
		content func(e *env) string
	}{
		{"reference", func(e *env) string { return "Scan for " + e.refs.Format(e.acme.Number) }},
		{"lower case with hash", func(e *env) string {
			return "case #" + strings.TrimLeft(e.refs.Format(e.acme.Number)[5:], "0") + " here"
		}},
		{"beside a channel mention", func(e *env) string {
			return "<#" + channel + "> see " + e.refs.Format(e.acme.Number) + " and <#1234567>"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			att, body := e.file(strings.ReplaceAll(tt.name, " ", "-")+".pdf", 1000)
			id := e.post(tt.content(e), att)
			r := e.replyTo(id)
			if !strings.HasPrefix(r.Content, "Attached `"+att.Filename+"`") || !strings.Contains(r.Content, e.refs.Format(e.acme.Number)) {
				t.Errorf("reply = %q, want Attached `%s` … %s", r.Content, att.Filename, e.refs.Format(e.acme.Number))
			}
			if !r.NoMentions || r.ChannelID != channel {
				t.Errorf("reply in %s pings (NoMentions=%v)", r.ChannelID, r.NoMentions)
			}
			if got := e.waitReaction(id); !slices.Equal(got, []string{"✅"}) {
				t.Errorf("reactions = %v, want ✅", got)
			}
			if !bytes.Equal(e.stored(e.acme)[att.Filename], body) {
				t.Errorf("stored bytes of %s differ from the upload", att.Filename)
			}
		})
	}
}

// A channel mention alone names no case: the bot asks rather than guess.
func TestChannelMentionIsNoCase(t *testing.T) {
	e := newEnv(t)
	att, _ := e.file("scan.pdf", 100)
	id := e.post("<#1> <#123> see #123", att)
	if r := e.replyTo(id); !strings.Contains(r.Content, "Which case is this for?") {
		t.Errorf("reply = %q, want the question", r.Content)
	}
}

func TestThreadAndReplyChain(t *testing.T) {
	e := newEnv(t)
	ref := e.refs.Format(e.acme.Number)

	t.Run("reply to the confirmation", func(t *testing.T) {
		first, _ := e.file("first.pdf", 100)
		id := e.post("for "+ref, first)
		conf := e.replyTo(id)
		second, body := e.file("second.pdf", 200)
		id2 := e.fake.PostMessage(discordtest.Message{GuildID: guild, ChannelID: channel, AuthorID: userID, Content: "one more", Attachments: []*discordgo.MessageAttachment{second}, ReplyTo: conf.ID})
		if r := e.replyTo(id2); !strings.HasPrefix(r.Content, "Attached `second.pdf`") {
			t.Errorf("reply = %q", r.Content)
		}
		if !bytes.Equal(e.stored(e.acme)["second.pdf"], body) {
			t.Error("second.pdf is not on the case")
		}
	})
	t.Run("down a long chain", func(t *testing.T) {
		a, _ := e.file("chain-0.pdf", 100)
		prev := e.replyTo(e.post("for "+ref, a)).ID
		for i := 1; i <= 3; i++ {
			f, _ := e.file("chain-"+string(rune('0'+i))+".pdf", 100)
			id := e.fake.PostMessage(discordtest.Message{GuildID: guild, ChannelID: channel, AuthorID: userID, Attachments: []*discordgo.MessageAttachment{f}, ReplyTo: prev})
			r := e.replyTo(id)
			if !strings.HasPrefix(r.Content, "Attached `"+f.Filename+"`") {
				t.Fatalf("reply %d = %q", i, r.Content)
			}
			prev = r.ID
		}
	})
	t.Run("reply to the upload", func(t *testing.T) {
		first, _ := e.file("root.pdf", 100)
		id := e.post("for "+ref, first)
		e.replyTo(id)
		next, _ := e.file("child.pdf", 100)
		id2 := e.fake.PostMessage(discordtest.Message{GuildID: guild, ChannelID: channel, AuthorID: userID, Attachments: []*discordgo.MessageAttachment{next}, ReplyTo: id})
		if r := e.replyTo(id2); !strings.HasPrefix(r.Content, "Attached `child.pdf`") {
			t.Errorf("reply = %q", r.Content)
		}
	})
	t.Run("thread", func(t *testing.T) {
		thread := e.fake.AddThread(guild, channel)
		a, _ := e.file("in-thread.pdf", 100)
		id := e.fake.PostMessage(discordtest.Message{GuildID: guild, ChannelID: thread, AuthorID: userID, Content: ref, Attachments: []*discordgo.MessageAttachment{a}})
		if r := e.replyTo(id); r.ChannelID != thread || !strings.HasPrefix(r.Content, "Attached") {
			t.Errorf("reply in %s = %q, want Attached in the thread %s", r.ChannelID, r.Content, thread)
		}
		b, _ := e.file("later.pdf", 100)
		id2 := e.fake.PostMessage(discordtest.Message{GuildID: guild, ChannelID: thread, AuthorID: userID, Content: "and this", Attachments: []*discordgo.MessageAttachment{b}})
		if r := e.replyTo(id2); !strings.HasPrefix(r.Content, "Attached `later.pdf`") {
			t.Errorf("reply = %q", r.Content)
		}
	})
}

func TestNoCaseThenAnswer(t *testing.T) {
	e := newEnv(t)
	att, body := e.file("unlabelled.pdf", 500)
	id := e.post("here you go", att)
	q := e.replyTo(id)
	if !strings.Contains(q.Content, "Which case is this for?") {
		t.Fatalf("reply = %q, want the question", q.Content)
	}
	// The file is fetched when the bot asks, while its signed URL is fresh.
	e.fake.Wait("the held file's download", func() bool { return e.fake.Downloads(att) == 1 })
	answer := e.fake.PostMessage(discordtest.Message{GuildID: guild, ChannelID: channel, AuthorID: userID, Content: e.refs.Format(e.acme.Number), ReplyTo: q.ID})
	r := e.replyTo(answer)
	if !strings.HasPrefix(r.Content, "Attached `unlabelled.pdf`") {
		t.Errorf("reply to the answer = %q", r.Content)
	}
	if got := e.waitReaction(answer); !slices.Equal(got, []string{"✅"}) {
		t.Errorf("reactions = %v", got)
	}
	if !bytes.Equal(e.stored(e.acme)["unlabelled.pdf"], body) {
		t.Error("the held file is not on the case")
	}
	if n := e.fake.Downloads(att); n != 1 {
		t.Errorf("CDN served the file %d times, want once", n)
	}
}

// A held file whose bytes are gone (the blob store lost them) is refused with a
// reason when its case is named, not silently lost.
func TestHeldFileLost(t *testing.T) {
	e := newEnv(t)
	att, _ := e.file("lost.pdf", 100)
	q := e.replyTo(e.post("no case yet", att))
	key := e.heldBlob(att.ID)
	err := filepath.WalkDir(e.blobs.Backend().(*blob.Dir).Root(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == key {
			return os.Remove(p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	answer := e.fake.PostMessage(discordtest.Message{GuildID: guild, ChannelID: channel, AuthorID: userID, Content: e.refs.Format(e.acme.Number), ReplyTo: q.ID})
	if r := e.replyTo(answer); !strings.Contains(r.Content, "could not be kept while waiting for its case") {
		t.Errorf("reply = %q", r.Content)
	}
	if got := e.waitReaction(answer); !slices.Equal(got, []string{"❌"}) {
		t.Errorf("reactions = %v, want ❌", got)
	}
}

// heldBlob waits for the held file id's bytes to be in the blob store and returns
// their key.
func (e *env) heldBlob(id string) string {
	e.t.Helper()
	var key string
	e.fake.Wait("the held file in the blob store", func() bool {
		err := e.st.DB().QueryRowContext(e.t.Context(), `SELECT COALESCE(data->>'held', '') FROM chat_pending_files
			WHERE platform = 'discord' AND file_id = $1`, id).Scan(&key)
		return err == nil && key != ""
	})
	return key
}

// A file held by one instance is attached when its case is named to another: the
// bytes wait in the shared blob store and the hold in PostgreSQL, not on the disk of
// the instance that asked. The blob sweep keeps them while the hold lasts.
func TestHeldFileAnsweredByAnotherInstance(t *testing.T) {
	e := newEnv(t)
	att, body := e.file("elsewhere.pdf", 700)
	q := e.replyTo(e.post("which case? you tell me", att))
	key := e.heldBlob(att.ID)

	rep, err := casebook.SweepBlobs(t.Context(), e.st, e.blobs, casebook.SweepOptions{Grace: time.Nanosecond, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Removed != 0 {
		t.Fatalf("the sweep removed %d blobs while a file was held (%s)", rep.Removed, key)
	}

	e.stop()
	e.stop = e.start()
	e.fake.Ready()
	answer := e.fake.PostMessage(discordtest.Message{GuildID: guild, ChannelID: channel, AuthorID: userID, Content: e.refs.Format(e.acme.Number), ReplyTo: q.ID})
	if r := e.replyTo(answer); !strings.HasPrefix(r.Content, "Attached `elsewhere.pdf`") {
		t.Errorf("reply to the answer on the other instance = %q", r.Content)
	}
	if !bytes.Equal(e.stored(e.acme)["elsewhere.pdf"], body) {
		t.Error("the held file is not on the case")
	}
	if n := e.fake.Downloads(att); n != 1 {
		t.Errorf("CDN served the file %d times, want once", n)
	}
}

func TestRefused(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		// attachment makes the file; content the message text.
		attachment func(e *env) *discordgo.MessageAttachment
		content    func(e *env) string
		want       string
		// fetched is whether the CDN may be asked for the file.
		fetched bool
	}{
		{
			name:       "case of another org",
			attachment: func(e *env) *discordgo.MessageAttachment { a, _ := e.file("other.pdf", 100); return a },
			content:    func(e *env) string { return e.refs.Format(e.other.Number) },
			want:       "I can't find " + e.refs.Format(e.other.Number) + " for this channel",
		},
		{
			name:       "case that does not exist",
			attachment: func(e *env) *discordgo.MessageAttachment { a, _ := e.file("none.pdf", 100); return a },
			content:    func(e *env) string { return e.refs.Format(999) },
			want:       "I can't find " + e.refs.Format(999) + " for this channel",
		},
		{
			name:       "declared larger than the cap",
			attachment: func(e *env) *discordgo.MessageAttachment { a, _ := e.file("big.pdf", maxBytes+1); return a },
			want:       "is larger than the",
		},
		{
			name: "declared smaller than sent",
			attachment: func(e *env) *discordgo.MessageAttachment {
				a, _ := e.file("short.pdf", 1000)
				a.Size = 900
				return a
			},
			want:    "did not match the size Discord announced",
			fetched: true,
		},
		{
			name: "declared larger than sent",
			attachment: func(e *env) *discordgo.MessageAttachment {
				a, _ := e.file("long.pdf", 1000)
				a.Size = 1100
				return a
			},
			want:    "did not match the size Discord announced",
			fetched: true,
		},
		{
			name: "url off the CDN",
			attachment: func(e *env) *discordgo.MessageAttachment {
				a, _ := e.file("elsewhere.pdf", 100)
				a.URL = strings.Replace(a.URL, "cdn.discordapp.com", "cdn.discordapp.com.attacker.example", 1)
				return a
			},
			want: "does not point at Discord's file server",
		},
		{
			name: "plain http",
			attachment: func(e *env) *discordgo.MessageAttachment {
				a, _ := e.file("http.pdf", 100)
				a.URL = strings.Replace(a.URL, "https://", "http://", 1)
				return a
			},
			want: "does not point at Discord's file server",
		},
		{
			name: "internal address",
			attachment: func(e *env) *discordgo.MessageAttachment {
				a, _ := e.file("internal.pdf", 100)
				a.URL = "https://169.254.169.254/latest/meta-data/"
				return a
			},
			want: "does not point at Discord's file server",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			att := tt.attachment(e)
			content := e.refs.Format(e.acme.Number)
			if tt.content != nil {
				content = tt.content(e)
			}
			id := e.post(content, att)
			r := e.replyTo(id)
			if !strings.Contains(r.Content, tt.want) {
				t.Errorf("reply = %q, want it to say %q", r.Content, tt.want)
			}
			if got := e.waitReaction(id); !slices.Equal(got, []string{"❌"}) {
				t.Errorf("reactions = %v, want ❌", got)
			}
			if n := e.fake.Downloads(att); n > 0 && !tt.fetched {
				t.Errorf("CDN served the file %d times, want no request", n)
			}
			for _, c := range []casebook.Case{e.acme, e.other} {
				if _, ok := e.stored(c)[att.Filename]; ok {
					t.Errorf("%s stored on %s", att.Filename, e.refs.Format(c.Number))
				}
			}
		})
	}
}

func TestIgnored(t *testing.T) {
	e := newEnv(t)
	ref := e.refs.Format(e.acme.Number)
	var atts []*discordgo.MessageAttachment
	var ids []string
	for _, m := range []discordtest.Message{
		{ChannelID: unbound, AuthorID: userID, Content: ref},
		{ChannelID: channel, AuthorID: "300000000000000099", Bot: true, Content: ref},
		{ChannelID: channel, AuthorID: e.fake.AppID(), Content: ref}, // our own, even without the bot flag
		{ChannelID: channel, AuthorID: userID, Content: "no file and no case"},
	} {
		a := e.fake.AddFile(m.ChannelID, "ignored.pdf", "application/pdf", randomBytes(10))
		m.GuildID = guild
		if m.Content != "no file and no case" {
			m.Attachments = []*discordgo.MessageAttachment{a}
			atts = append(atts, a)
		}
		ids = append(ids, e.fake.PostMessage(m))
	}
	e.sync()
	for _, id := range ids {
		if n := e.repliesTo(id); n != 0 || len(e.reactions(id)) != 0 {
			t.Errorf("message %s got %d replies and reactions %v, want none", id, n, e.reactions(id))
		}
	}
	for _, a := range atts {
		if n := e.fake.Downloads(a); n != 0 {
			t.Errorf("an ignored file was downloaded %d times", n)
		}
	}
	if _, ok := e.stored(e.acme)["ignored.pdf"]; ok {
		t.Error("a file from an ignored message is on the case")
	}
}

func TestReplayedEventStoredOnce(t *testing.T) {
	e := newEnv(t)
	att, _ := e.file("once.pdf", 100)
	id := e.post(e.refs.Format(e.acme.Number), att)
	e.replyTo(id)
	e.fake.Replay(1)
	e.sync()
	if n := e.repliesTo(id); n != 1 {
		t.Errorf("%d replies, want 1", n)
	}
	if got := e.reactions(id); !slices.Equal(got, []string{"✅"}) {
		t.Errorf("reactions = %v, want one ✅", got)
	}
	if n := e.fake.Downloads(att); n != 1 {
		t.Errorf("downloaded %d times, want once", n)
	}
	if _, ok := e.stored(e.acme)["once.pdf"]; !ok {
		t.Error("once.pdf is not on the case")
	}
}

// The gateway goes away mid-session; discordgo resumes, the fake replays what was
// dispatched meanwhile (and, as Discord may, some of what was delivered already).
// Every file ends up on the case once, with one reply.
func TestGatewayResume(t *testing.T) {
	tests := []struct {
		name      string
		interrupt func(*discordtest.Server)
	}{
		{"connection dropped", (*discordtest.Server).Drop},
		{"op 7 reconnect", (*discordtest.Server).Reconnect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ref := e.refs.Format(e.acme.Number)
			var ids []string
			want := map[string][]byte{}
			post := func(i int) {
				name := "part-" + string(rune('a'+i)) + ".pdf"
				att, body := e.file(name, 100+i)
				want[name] = body
				ids = append(ids, e.post(ref, att))
			}
			for i := range 5 {
				post(i)
			}
			e.replyTo(ids[4])
			tt.interrupt(e.fake)
			for i := 5; i < 10; i++ {
				post(i)
			}
			e.fake.Wait("a resumed session", func() bool { return e.fake.Resumes() >= 1 })
			e.fake.Replay(7)
			for _, id := range ids {
				e.replyTo(id)
			}
			e.sync()
			for _, id := range ids {
				if n := e.repliesTo(id); n != 1 {
					t.Errorf("message %s: %d replies, want 1", id, n)
				}
			}
			got := e.stored(e.acme)
			for name := range got {
				if strings.HasPrefix(name, "sync-") {
					delete(got, name)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("stored files (-want +got):\n%s", diff)
			}
			if n := len(e.fake.Identifies()); n != 1 {
				t.Errorf("%d identifies, want 1 (the session resumed)", n)
			}
		})
	}
}

// Start-up refusals stop Run with an error that says what to fix, rather than a
// reconnect loop.
func TestStartRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*discordtest.Server)
		token string
		want  error
		says  string
	}{
		{"message content not enabled", (*discordtest.Server).DenyMessageContent, "", ErrDisallowedIntents, "enable the Message Content intent"},
		{"wrong token", func(*discordtest.Server) {}, "not-the-token", ErrAuthenticationFailed, "CASEBOOK_DISCORD_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := discordtest.New(t, discordtest.Options{})
			tt.setup(fake)
			token := fake.Token()
			if tt.token != "" {
				token = tt.token
			}
			st := pgtest.Store(t)
			blobs, err := blob.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			svc := casebook.NewService(st, blobs, casebook.Options{})
			b, err := New(Config{Token: token, APIURL: fake.URL, Held: blobs}, st, svc)
			if err != nil {
				t.Fatal(err)
			}
			err = b.Run(t.Context())
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("Run = %v, want %v saying %q", err, tt.want, tt.says)
			}
		})
	}
}

// An outage at start-up is waited out: Run keeps trying and connects once Discord is back.
func TestStartDuringOutage(t *testing.T) {
	fake := discordtest.New(t, discordtest.Options{})
	fake.FailGateway(2)
	st := pgtest.Store(t)
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Token: fake.Token(), APIURL: fake.URL, Held: blobs}, st, casebook.NewService(st, blobs, casebook.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	fake.Ready()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after a stop", err)
	}
}

func TestSlashCommand(t *testing.T) {
	e := newEnv(t)
	ref := e.refs.Format(e.acme.Number)
	attach := func(caseArg string, a *discordgo.MessageAttachment) discordgo.ApplicationCommandInteractionData {
		return discordgo.ApplicationCommandInteractionData{
			Name:        "case",
			CommandType: discordgo.ChatApplicationCommand,
			Options: []*discordgo.ApplicationCommandInteractionDataOption{{
				Name: "attach", Type: discordgo.ApplicationCommandOptionSubCommand,
				Options: []*discordgo.ApplicationCommandInteractionDataOption{
					{Name: "case", Type: discordgo.ApplicationCommandOptionString, Value: caseArg},
					{Name: "file", Type: discordgo.ApplicationCommandOptionAttachment, Value: a.ID},
				},
			}},
			Resolved: &discordgo.ApplicationCommandInteractionDataResolved{Attachments: map[string]*discordgo.MessageAttachment{a.ID: a}},
		}
	}
	show := func(arg string) discordgo.ApplicationCommandInteractionData {
		return discordgo.ApplicationCommandInteractionData{
			Name:        "case",
			CommandType: discordgo.ChatApplicationCommand,
			Options: []*discordgo.ApplicationCommandInteractionDataOption{{
				Name: "show", Type: discordgo.ApplicationCommandOptionSubCommand,
				Options: []*discordgo.ApplicationCommandInteractionDataOption{
					{Name: "number", Type: discordgo.ApplicationCommandOptionString, Value: arg},
				},
			}},
		}
	}
	slashFile, slashBody := e.file("slash.pdf", 300)
	otherFile, _ := e.file("slash-other.pdf", 300)
	tests := []struct {
		name    string
		channel string
		data    discordgo.ApplicationCommandInteractionData
		want    string
	}{
		{"attach", channel, attach(strings.TrimLeft(ref[5:], "0"), slashFile), "✅ Attached `slash.pdf`"},
		{"attach to another org's case", channel, attach(e.refs.Format(e.other.Number), otherFile), "❌ I can't find " + e.refs.Format(e.other.Number)},
		{"attach in an unbound channel", unbound, attach(ref, otherFile), "not linked to an organisation"},
		{"show", channel, show(ref), ref + " — Acme scanner\nStatus: open"},
		{"show another org's case", channel, show(e.refs.Format(e.other.Number)), "I can't find"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := e.fake.Interact(guild, tt.channel, userID, tt.data)
			var f discordtest.Followup
			e.fake.Wait("the followup", func() bool {
				for _, x := range e.fake.Followups() {
					if x.InteractionID == id {
						f = x
						return true
					}
				}
				return false
			})
			// The fake takes a followup only after a first response within three seconds.
			var cb []discordtest.Callback
			for _, c := range e.fake.Callbacks() {
				if c.InteractionID == id {
					cb = append(cb, c)
				}
			}
			if diff := cmp.Diff([]discordtest.Callback{{InteractionID: id, Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}}, cb); diff != "" {
				t.Errorf("callbacks (-want +got):\n%s", diff)
			}
			if !strings.Contains(f.Content, tt.want) || !f.NoMentions {
				t.Errorf("followup = %q (NoMentions=%v), want it to contain %q", f.Content, f.NoMentions, tt.want)
			}
		})
	}
	if !bytes.Equal(e.stored(e.acme)["slash.pdf"], slashBody) {
		t.Error("slash.pdf is not on the case")
	}
	if _, ok := e.stored(e.other)["slash-other.pdf"]; ok {
		t.Error("a file went to another org's case")
	}
}
