// Package discord is the Discord bot: files posted in a channel bound to an org land on
// the case named in the message (or tied to its reply chain or thread), confirmed by a
// reply and a reaction. It turns gateway events into bots.Message and leaves the
// decisions to the shared chat logic in package bots.
package discord

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/casebookhq/casebook/bots"
	"github.com/casebookhq/casebook/casebook"
)

// Intents the bot asks for. Message Content is privileged: without it Discord delivers
// guild messages with empty text and no attachments (since API v10 / September 2022).
const Intents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages | discordgo.IntentMessageContent

// ErrDisallowedIntents is start-up failing with gateway close code 4014.
var ErrDisallowedIntents = errors.New("gateway closed with 4014 (disallowed intents): enable the Message Content intent " +
	"for the bot in the Discord developer portal (Applications → your app → Bot → Privileged Gateway Intents)")

// ErrAuthenticationFailed is start-up failing with gateway close code 4004.
var ErrAuthenticationFailed = errors.New("gateway closed with 4004 (authentication failed): check CASEBOOK_DISCORD_TOKEN")

// Gateway close codes, from Discord's "Opcodes and Status Codes" page.
const (
	closeAuthenticationFailed = 4004
	closeDisallowedIntents    = 4014
)

// Discord refuses message content longer than 2,000 characters.
const maxContent = 2000

// drainTimeout bounds the work done on events already received when Run stops: the
// gateway does not redeliver them to a later session.
const drainTimeout = 5 * time.Second

// Config configures the bot.
type Config struct {
	// Token is the bot token from the developer portal, without "Bot ".
	Token string
	// AppID is the application id, under which the slash command is registered; the
	// bot user's id (the same for current applications) when empty.
	AppID string
	// APIURL, when set, is where discord.com, the gateway and the CDN hosts are
	// reached instead (a fake in tests, a proxy in staging). Empty in production.
	APIURL string
	// Held keeps the bytes of files waiting for their case to be named.
	Held HeldFiles
	// Workers handle messages concurrently; a channel's messages stay in order. 4 when zero.
	Workers int
	Logger  *slog.Logger
}

// Bot is a Discord gateway session wired to the shared chat logic.
type Bot struct {
	cfg     Config
	session *discordgo.Session
	chat    *bots.Bot
	store   Store
	refs    casebook.RefFormat
	maxSize int64
	dl      *http.Client
	hold    *hold
	log     *slog.Logger

	queues []chan job
	stop   chan struct{}
	// base is Run's context without its cancellation, for work that must finish.
	base    context.Context
	mu      sync.Mutex // guards stopped against wg.Go after Wait
	stopped bool
	wg      sync.WaitGroup
	parents sync.Map // channel id → parent channel id ("" for a channel that is no thread)
}

// New builds the bot; Run connects it.
func New(cfg Config, store Store, cases bots.Cases) (*Bot, error) {
	if cfg.Token == "" {
		return nil, errors.New("discord: token is empty")
	}
	if cfg.Held == nil {
		return nil, errors.New("discord: no store for held files")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := discordgo.New("Bot " + cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("discord: %w", err)
	}
	s.Identify.Intents = Intents
	// Handlers run in the gateway's reader, in order; they only queue work, so
	// heartbeat acks are never held up behind a download.
	s.SyncEvents = true
	// Each worker keeps a connection to the API and one to the CDN.
	pool := http.DefaultTransport.(*http.Transport).Clone()
	pool.MaxIdleConnsPerHost = 2 * cfg.Workers
	var transport http.RoundTripper = pool
	if cfg.APIURL != "" {
		base, err := parseBase(cfg.APIURL)
		if err != nil {
			return nil, err
		}
		r := redirect{base: base, next: pool}
		transport = r
		s.Dialer = r.dialer()
	}
	s.Client = &http.Client{Transport: transport, Timeout: 20 * time.Second}
	b := &Bot{
		cfg:     cfg,
		session: s,
		store:   store,
		refs:    cases.Refs(),
		maxSize: cases.MaxFileSize(),
		// Downloads get longer than REST calls, and follow redirects only within the CDN.
		dl:   &http.Client{Transport: transport, Timeout: 5 * time.Minute, CheckRedirect: cdnRedirectsOnly},
		hold: &hold{blobs: cfg.Held, store: store, limit: cases.MaxFileSize()},
		log:  cfg.Logger.With("source", casebook.SourceDiscord),
		stop: make(chan struct{}),
	}
	b.chat, err = bots.New(store, cases, bots.Options{Reopen: b.hold.opener, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("discord: %w", err)
	}
	b.queues = make([]chan job, cfg.Workers)
	for i := range b.queues {
		b.queues[i] = make(chan job, 64)
	}
	s.AddHandler(b.onMessageCreate)
	s.AddHandler(b.onInteractionCreate)
	s.AddHandler(func(_ *discordgo.Session, r *discordgo.Ready) {
		b.log.Info("discord gateway ready", "session", r.SessionID, "user", r.User.ID)
	})
	s.AddHandler(func(_ *discordgo.Session, _ *discordgo.Resumed) { b.log.Info("discord gateway session resumed") })
	s.AddHandler(func(_ *discordgo.Session, _ *discordgo.Disconnect) { b.log.Info("discord gateway disconnected") })
	return b, nil
}

// Run connects to the gateway, registers the slash command and handles events until
// ctx ends. discordgo reconnects and resumes by itself after a dropped connection; a
// refusal at start-up (4004, 4014) is returned.
func (b *Bot) Run(ctx context.Context) error {
	b.base = context.WithoutCancel(ctx)
	if err := b.open(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	work, cancelWork := context.WithCancel(b.base)
	defer cancelWork()
	for _, q := range b.queues {
		b.wg.Go(func() { b.worker(work, q) })
	}
	var loops sync.WaitGroup
	loops.Go(func() { b.chat.Run(ctx) })

	err := b.registerCommands(ctx)
	if err == nil || ctx.Err() != nil {
		// Stopping while the command is registered is a stop, not a failure.
		err = nil
		<-ctx.Done()
	}
	b.session.Close()
	b.mu.Lock()
	b.stopped = true
	close(b.stop)
	b.mu.Unlock()
	t := time.AfterFunc(drainTimeout, cancelWork)
	defer t.Stop()
	b.wg.Wait()
	loops.Wait()
	return err
}

// open connects to the gateway. A refusal that only the operator can fix (a bad token,
// the intent not enabled, closes 4004 and 4010–4014) is returned; anything else (Discord
// or the network being down) is retried with backoff, so that an outage at start-up
// does not take the rest of the service down with it.
func (b *Bot) open(ctx context.Context) error {
	backoff := casebook.Backoff{Min: time.Second, Max: time.Minute}
	for {
		err := b.session.Open()
		if err == nil {
			return nil
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			switch {
			case ce.Code == closeDisallowedIntents:
				return fmt.Errorf("discord: %w", ErrDisallowedIntents)
			case ce.Code == closeAuthenticationFailed:
				return fmt.Errorf("discord: %w", ErrAuthenticationFailed)
			case ce.Code >= 4010 && ce.Code <= 4013:
				return fmt.Errorf("discord: gateway refused the session: %w", err)
			}
		}
		wait := backoff.Next()
		b.log.WarnContext(ctx, "cannot connect to the discord gateway; retrying", "retry_in", wait, slog.Any("error", err))
		if err := casebook.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// job handles one event and returns how to answer it.
type job func(ctx context.Context) answer

// worker runs queued jobs until stop, then those queued already while ctx lasts.
// Replies and reactions go out in order on goroutines of their own: Discord allows
// about four reactions a second in a channel (discordgo spaces them 200 ms apart),
// and neither the next file nor the next reply need wait for that.
func (b *Bot) worker(ctx context.Context, q chan job) {
	replies, reactions := make(chan func(context.Context), 1024), make(chan func(context.Context), 1024)
	var aw sync.WaitGroup
	for _, ch := range []chan func(context.Context){replies, reactions} {
		aw.Go(func() {
			for f := range ch {
				// After the drain timeout, what is left is dropped: discordgo would
				// still wait out each reaction's rate limit before seeing ctx.
				if ctx.Err() == nil {
					f(ctx)
				}
			}
		})
	}
	defer func() {
		close(replies)
		close(reactions)
		aw.Wait()
	}()
	run := func(j job) {
		a := j(ctx)
		if a.reply != nil {
			replies <- a.reply
		}
		if a.react != nil {
			reactions <- a.react
		}
	}
	for {
		select {
		case j := <-q:
			run(j)
		case <-b.stop:
			for {
				select {
				case j := <-q:
					if ctx.Err() != nil {
						return
					}
					run(j)
				default:
					return
				}
			}
		}
	}
}

// enqueue runs f on the worker of channel, after the channel's earlier messages, so
// that an answer to "Which case is this for?" never overtakes the upload it answers.
func (b *Bot) enqueue(channel string, j job) {
	h := fnv.New32a()
	h.Write([]byte(channel))
	select {
	case b.queues[h.Sum32()%uint32(len(b.queues))] <- j:
	case <-b.stop:
	}
}

// onMessageCreate takes messages with files, or naming a case, from people.
func (b *Bot) onMessageCreate(s *discordgo.Session, mc *discordgo.MessageCreate) {
	m := mc.Message
	if m.Author == nil || m.Author.Bot || m.Author.System || m.GuildID == "" {
		return
	}
	if s.State != nil && s.State.User != nil && m.Author.ID == s.State.User.ID {
		return
	}
	if len(m.Attachments) == 0 && len(b.refs.FindAll(m.Content)) == 0 {
		return
	}
	b.enqueue(m.ChannelID, func(ctx context.Context) answer { return b.handleMessage(ctx, m) })
}

// handleMessage hands m to the chat logic and returns how to answer it.
func (b *Bot) handleMessage(ctx context.Context, m *discordgo.Message) answer {
	channel, thread, err := b.place(ctx, m.ChannelID)
	if err != nil {
		b.log.ErrorContext(ctx, "cannot look up discord channel", "channel", m.ChannelID, slog.Any("error", err))
		return answer{}
	}
	if thread == "" {
		thread = replyRoot(m)
	}
	msg := bots.Message{
		Platform:   casebook.SourceDiscord,
		Workspace:  m.GuildID,
		Channel:    channel,
		Thread:     thread,
		MessageID:  m.ID,
		EventID:    m.ID,
		AuthorID:   m.Author.ID,
		AuthorName: m.Author.Username,
		Text:       m.Content,
	}
	for _, a := range m.Attachments {
		msg.Files = append(msg.Files, b.file(a))
	}
	reply := b.chat.HandleMessage(ctx, msg)
	if reply.Kind == bots.ReplyNone {
		return answer{}
	}
	switch reply.Kind {
	case bots.ReplyAsk:
		b.holdFiles(ctx, m.Attachments)
	case bots.ReplyAttached:
		// A reply to our confirmation resolves to m (see replyRoot), so m joins the
		// case's chain before the next message of the channel is handled.
		b.tie(ctx, m.GuildID, channel, m.ID, reply)
	}
	return b.respond(m, channel, reply)
}

// answer is how an event is answered: a reply and a reaction, each may be nil.
type answer struct {
	reply, react func(context.Context)
}

// tie makes message id a key of the reply chain of the case reply went to. The chain's
// root is tied by the chat logic already.
func (b *Bot) tie(ctx context.Context, guild, channel, id string, reply bots.Reply) {
	if id == reply.Thread {
		return
	}
	if err := b.chat.TieThread(ctx, casebook.SourceDiscord, guild, channel, id, reply.Case); err != nil {
		b.log.WarnContext(ctx, "cannot tie discord message to case", "message", id, slog.Any("error", err))
	}
}

// respond is the answer to m: a reply that references m and pings nobody, and ✅ or ❌
// on m.
func (b *Bot) respond(m *discordgo.Message, channel string, reply bots.Reply) answer {
	var a answer
	a.reply = func(ctx context.Context) {
		sent, err := b.session.ChannelMessageSendComplex(m.ChannelID, &discordgo.MessageSend{
			Content:         clip(reply.Text),
			Reference:       m.SoftReference(),
			AllowedMentions: noMentions(),
		}, discordgo.WithContext(ctx))
		if err != nil {
			b.log.ErrorContext(ctx, "cannot reply on discord", "channel", m.ChannelID, "message", m.ID, slog.Any("error", err))
			return
		}
		if reply.Kind == bots.ReplyAttached {
			// For a reply whose referenced message Discord leaves out (deleted, or
			// not sent), the chain key is the confirmation itself.
			b.tie(ctx, m.GuildID, channel, sent.ID, reply)
		}
	}
	emoji := map[bots.ReplyKind]string{bots.ReplyAttached: "✅", bots.ReplyRefused: "❌"}[reply.Kind]
	if emoji != "" {
		a.react = func(ctx context.Context) {
			if err := b.session.MessageReactionAdd(m.ChannelID, m.ID, emoji, discordgo.WithContext(ctx)); err != nil {
				b.log.WarnContext(ctx, "cannot react on discord", "channel", m.ChannelID, "message", m.ID, slog.Any("error", err))
			}
		}
	}
	return a
}

// file describes an attachment to the chat logic. Its URL is kept only in the Opener
// (the download happens while the event is handled), never stored.
func (b *Bot) file(a *discordgo.MessageAttachment) bots.File {
	size := int64(a.Size)
	url := a.URL
	return bots.File{
		ID:          a.ID,
		Name:        a.Filename,
		ContentType: a.ContentType,
		Size:        size,
		Open: func(ctx context.Context, limit int64) (io.ReadCloser, error) {
			return download(ctx, b.dl, url, size, limit)
		},
	}
}

// holdFiles downloads the files the chat logic is holding for their case, at once,
// while their signed URLs are fresh.
func (b *Bot) holdFiles(ctx context.Context, atts []*discordgo.MessageAttachment) {
	for _, a := range atts {
		if err := b.hold.put(ctx, a.ID, func(ctx context.Context) (io.ReadCloser, error) {
			return download(ctx, b.dl, a.URL, int64(a.Size), b.maxSize)
		}); err != nil {
			b.log.WarnContext(ctx, "cannot keep discord file waiting for its case", "external_id", a.ID, slog.Any("error", err))
		}
	}
}

// place returns the channel a message's binding is looked up by, and the thread key
// when the message is in a thread: a thread is a channel of its own whose parent is
// the bound channel.
func (b *Bot) place(ctx context.Context, channelID string) (channel, thread string, err error) {
	if p, ok := b.parents.Load(channelID); ok {
		if p.(string) != "" {
			return p.(string), channelID, nil
		}
		return channelID, "", nil
	}
	ch, err := b.session.State.Channel(channelID)
	if err != nil {
		ch, err = b.session.Channel(channelID, discordgo.WithContext(ctx))
		if err != nil {
			return "", "", err
		}
	}
	parent := ""
	if ch.IsThread() {
		parent = ch.ParentID
	}
	b.parents.Store(channelID, parent)
	if parent != "" {
		return parent, channelID, nil
	}
	return channelID, "", nil
}

// replyRoot is the key of a message's reply chain: the message it answers, or what
// that message answers in turn (a reply to the bot's confirmation or question belongs
// to the upload the bot answered). Discord sends the referenced message one level deep.
func replyRoot(m *discordgo.Message) string {
	ref := m.MessageReference
	if ref == nil || ref.MessageID == "" || (m.Type != discordgo.MessageTypeReply && m.Type != discordgo.MessageTypeDefault) {
		return ""
	}
	if rm := m.ReferencedMessage; rm != nil && rm.MessageReference != nil && rm.MessageReference.MessageID != "" &&
		(rm.MessageReference.ChannelID == "" || rm.MessageReference.ChannelID == m.ChannelID) {
		return rm.MessageReference.MessageID
	}
	return ref.MessageID
}

// noMentions pings nobody: {"parse": []}, not null, which Discord reads as the default.
func noMentions() *discordgo.MessageAllowedMentions {
	return &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}
}

// clip shortens s to Discord's content limit.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= maxContent {
		return s
	}
	r := []rune(s)
	return string(r[:maxContent-1]) + "…"
}

// cdnRedirectsOnly follows a redirect only to Discord's CDN.
func cdnRedirectsOnly(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	if _, err := cdnURL(req.URL.String()); err != nil {
		return err
	}
	return nil
}
