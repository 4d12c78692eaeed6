// Package slack is casebook's Slack adapter: it turns file uploads in Slack channels
// into bots.Message values for the shared chat logic and speaks the answer back in the
// thread. Events arrive over Socket Mode (an outbound WebSocket, no inbound port) or,
// optionally, over the Events API on the web server; both feed the same handler.
package slack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/slackutilsx"

	"github.com/casebookhq/casebook/bots"
	"github.com/casebookhq/casebook/casebook"
)

// BotScopes are the bot token scopes the adapter needs: read messages in public and
// private channels, download files, post replies, react, and take /case.
var BotScopes = []string{"channels:history", "groups:history", "files:read", "chat:write", "reactions:write", "commands"}

// AppScope is the app-level token's scope Socket Mode needs.
const AppScope = "connections:write"

// Handler is the shared chat logic. *bots.Bot implements it.
type Handler interface {
	HandleMessage(ctx context.Context, m bots.Message) bots.Reply
	CaseStatus(ctx context.Context, platform casebook.Source, workspace, channel, arg string) string
}

var _ Handler = (*bots.Bot)(nil)

// Config configures the adapter.
type Config struct {
	// BotToken (xoxb-) calls the Web API and downloads files.
	BotToken string
	// AppToken (xapp-) opens Socket Mode connections; without it only the Events API
	// handler receives events.
	AppToken string
	// SigningSecret verifies Events API requests; required for EventsHandler.
	SigningSecret string
	// APIURL is the Web API base URL; Slack's when empty. Tests point it at a fake.
	APIURL string
	// Workers bounds the events handled at once; 8 when zero. Events of one channel are
	// handled in order, so an answer never overtakes the upload it answers.
	Workers int
	// HTTPClient is used for every call; http.DefaultClient when nil.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Slack is the adapter.
type Slack struct {
	cfg    Config
	api    *slack.Client
	log    *slog.Logger
	queues []chan job

	mu        sync.Mutex
	botUserID string
}

// job is one message to handle; h travels with it because the Events API handler and
// Socket Mode may be given their handler separately.
type job struct {
	h  Handler
	ev slackevents.EventsAPIEvent
	id string
}

// New returns an adapter. It does not contact Slack: Check does.
func New(cfg Config) (*Slack, error) {
	if cfg.BotToken == "" {
		return nil, errors.New("slack: a bot token (xoxb-…) is required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	opts := []slack.Option{slack.OptionLog(slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug))}
	if cfg.APIURL != "" {
		u := cfg.APIURL
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		opts = append(opts, slack.OptionAPIURL(u))
	}
	if cfg.AppToken != "" {
		opts = append(opts, slack.OptionAppLevelToken(cfg.AppToken))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, slack.OptionHTTPClient(cfg.HTTPClient))
	}
	s := &Slack{cfg: cfg, api: slack.New(cfg.BotToken, opts...), log: cfg.Logger}
	s.queues = make([]chan job, cfg.Workers)
	for i := range s.queues {
		s.queues[i] = make(chan job, 64)
	}
	return s, nil
}

// Check is the start-up check: auth.test with the bot token, naming any missing bot
// scope, and, with an app token, apps.connections.open to prove connections:write.
func (s *Slack) Check(ctx context.Context) error {
	var missing []string
	res, err := s.api.AuthTestContext(ctx)
	if err != nil {
		return fmt.Errorf("slack: auth.test with the bot token: %w", explain(err))
	}
	granted := strings.Split(strings.ReplaceAll(res.Header.Get("X-OAuth-Scopes"), " ", ""), ",")
	for _, sc := range BotScopes {
		if !slices.Contains(granted, sc) {
			missing = append(missing, sc)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("slack: the bot token lacks the scope(s) %s: add them under OAuth & Permissions and reinstall the app", strings.Join(missing, ", "))
	}
	s.mu.Lock()
	s.botUserID = res.UserID
	s.mu.Unlock()
	if s.cfg.AppToken != "" {
		if _, _, err := s.api.StartSocketModeContext(ctx); err != nil {
			return fmt.Errorf("slack: app-level token (needs %s): %w", AppScope, explain(err))
		}
	}
	s.log.InfoContext(ctx, "slack connected", "workspace", res.TeamID, "bot_user", res.UserID)
	return nil
}

// explain names the scope Slack says is missing.
func explain(err error) error {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && se.Err == "missing_scope" && se.Needed != "" {
		return fmt.Errorf("missing scope %s: %w", se.Needed, err)
	}
	return err
}

// Reopen is bots.Options.Reopen: it fetches a held file again from its URL.
func (s *Slack) Reopen(f bots.File) bots.Opener {
	return func(ctx context.Context, limit int64) (io.ReadCloser, error) {
		return s.open(ctx, f, limit)
	}
}

// errSignIn is what slack-go reports when files.slack.com redirected the download
// to the workspace sign-in page.
const errSignIn = "redirected to the sign-in page"

// signInError is the refusal for a download that came back as a sign-in page.
func signInError(err error) error {
	return &bots.PublicError{
		Public: "the casebook Slack app may not read files (it lacks the files:read scope): ask your Slack admin to add it and reinstall the app, then upload the file again.",
		Err:    fmt.Errorf("slack: download returned the sign-in page, the bot token lacks files:read: %w", err),
	}
}

// open streams a file's download into the returned reader. GetFileContext writes into
// a pipe from its own goroutine, so the bytes flow to the blob store as they arrive;
// closing the reader early (the blob store refused at limit+1) ends the download.
func (s *Slack) open(ctx context.Context, f bots.File, limit int64) (io.ReadCloser, error) {
	if f.URL == "" {
		return nil, fmt.Errorf("slack: file %s has no download URL", f.ID)
	}
	pr, pw := io.Pipe()
	go func() {
		err := retry(ctx, func() error { return s.api.GetFileContext(ctx, f.URL, pw) })
		if err != nil && strings.Contains(err.Error(), errSignIn) {
			err = signInError(err)
		}
		pw.CloseWithError(err)
	}()
	br := bufio.NewReaderSize(pr, 512)
	// A missing-scope download may also arrive as the page itself, without the
	// redirect slack-go recognises; a file declared as something else that starts
	// like an HTML document is that page.
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		pr.CloseWithError(err)
		return nil, err
	}
	if !strings.HasPrefix(f.ContentType, "text/html") && looksLikeHTML(head) {
		pr.Close()
		return nil, signInError(errors.New("an HTML page came back instead of the file"))
	}
	return readCloser{Reader: io.LimitReader(br, limit+1), Closer: pr}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

func looksLikeHTML(b []byte) bool {
	b = bytes.ToLower(bytes.TrimSpace(b))
	return bytes.HasPrefix(b, []byte("<!doctype html")) || bytes.HasPrefix(b, []byte("<html"))
}

// retry runs fn again after the wait Slack asks for on HTTP 429, a few times.
func retry(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || attempt == 4 {
			return err
		}
		t := time.NewTimer(rl.RetryAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// dispatch queues an event for the worker of its channel. It reports false when that
// worker is behind (the Events API handler then answers 503 and Slack retries).
func (s *Slack) dispatch(ctx context.Context, j job, wait bool) bool {
	ch := ""
	if ie, ok := j.ev.InnerEvent.Data.(*slackevents.MessageEvent); ok {
		ch = ie.Channel
	}
	h := fnv.New32a()
	h.Write([]byte(ch))
	q := s.queues[int(h.Sum32()%uint32(len(s.queues)))]
	if !wait {
		select {
		case q <- j:
			return true
		default:
			return false
		}
	}
	select {
	case q <- j:
		return true
	case <-ctx.Done():
		return false
	}
}

// work handles the events of its queue one at a time until ctx ends.
func (s *Slack) work(ctx context.Context, q chan job) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-q:
			s.handle(ctx, j)
		}
	}
}

// handle turns one event into a bots.Message and speaks the reply.
func (s *Slack) handle(ctx context.Context, j job) {
	ev, ok := j.ev.InnerEvent.Data.(*slackevents.MessageEvent)
	if !ok || !s.wanted(ev) {
		return
	}
	m := bots.Message{
		Platform:  casebook.SourceSlack,
		Workspace: j.ev.TeamID,
		Channel:   ev.Channel,
		Thread:    ev.ThreadTimeStamp,
		MessageID: ev.TimeStamp,
		EventID:   j.id,
		AuthorID:  ev.User,
		Text:      ev.Text,
	}
	if ev.Message != nil {
		m.AuthorName = ev.Message.Username
		for _, f := range ev.Message.Files {
			bf, ok := s.file(ctx, f)
			if ok {
				m.Files = append(m.Files, bf)
			}
		}
	}
	if ev.SubType == "file_share" && len(m.Files) == 0 {
		return
	}
	r := j.h.HandleMessage(ctx, m)
	if r.Kind == bots.ReplyNone {
		return
	}
	log := s.log.With("channel", m.Channel, "message", m.MessageID)
	err := retry(ctx, func() error {
		_, _, err := s.api.PostMessageContext(ctx, m.Channel, slack.MsgOptionText(r.Text, false), slack.MsgOptionTS(r.Thread), slack.MsgOptionDisableLinkUnfurl())
		return err
	})
	if err != nil {
		log.ErrorContext(ctx, "cannot reply in slack thread", slog.Any("error", explain(err)))
	}
	var reactions []string
	if r.Attached > 0 {
		reactions = append(reactions, "white_check_mark")
	}
	if r.Refused > 0 {
		reactions = append(reactions, "x")
	}
	for _, name := range reactions {
		err := retry(ctx, func() error {
			return s.api.AddReactionContext(ctx, name, slack.ItemRef{Channel: m.Channel, Timestamp: m.MessageID})
		})
		if err != nil && !strings.Contains(err.Error(), "already_reacted") {
			log.WarnContext(ctx, "cannot react in slack", "reaction", name, slog.Any("error", explain(err)))
		}
	}
}

// wanted keeps new messages by people: a file_share upload, or plain text that may
// answer the bot's question (thread_broadcast is a thread reply also shown in the
// channel). Edits (message_changed), deletions, bot messages (our own replies among
// them) and other subtypes are ignored.
func (s *Slack) wanted(ev *slackevents.MessageEvent) bool {
	switch ev.SubType {
	case "", "file_share", "thread_broadcast":
	default:
		return false
	}
	if ev.BotID != "" || ev.User == "" {
		return false
	}
	s.mu.Lock()
	own := ev.User == s.botUserID
	s.mu.Unlock()
	return !own
}

// file describes an uploaded file for the shared logic, calling files.info first when
// the event leaves the URL out or says check_file_info (Slack Connect). External
// files (Google Drive and the like) live outside Slack and are skipped.
func (s *Slack) file(ctx context.Context, f slack.File) (bots.File, bool) {
	if f.IsExternal || f.Mode == "external" || f.Mode == "tombstone" {
		return bots.File{}, false
	}
	var infoErr error
	if f.URLPrivateDownload == "" || f.FileAccess == "check_file_info" {
		var info *slack.File
		infoErr = retry(ctx, func() error {
			var err error
			info, _, _, err = s.api.GetFileInfoContext(ctx, f.ID, 0, 0)
			return err
		})
		if infoErr == nil {
			f = *info
		}
	}
	if f.IsExternal {
		return bots.File{}, false
	}
	bf := bots.File{ID: f.ID, Name: f.Name, ContentType: f.Mimetype, Size: int64(f.Size), URL: f.URLPrivateDownload}
	if bf.Name == "" {
		bf.Name = f.Title
	}
	bf.Open = s.Reopen(bf)
	if infoErr != nil {
		// The shared logic reports the failure in the thread, as for a failed download.
		err := fmt.Errorf("slack: files.info %s: %w", f.ID, explain(infoErr))
		var se slack.SlackErrorResponse
		if errors.As(infoErr, &se) && se.Err == "missing_scope" {
			err = signInError(err)
		}
		bf.Open = func(context.Context, int64) (io.ReadCloser, error) { return nil, err }
	}
	return bf, true
}

// Escape is bots.Options.Escape for Slack's mrkdwn: &, < and > are control characters.
func Escape(s string) string { return slackutilsx.EscapeMessage(s) }
