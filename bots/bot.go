package bots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

// The defaults of Options.
const (
	// DefaultHold is how long a file waits for someone to name its case.
	DefaultHold = 15 * time.Minute
	// DefaultEventMemory is how long delivered event ids are remembered. Slack retries
	// an event for about five minutes (immediately, after 1 and after 5 minutes).
	DefaultEventMemory = 24 * time.Hour
)

// Options tunes a Bot.
type Options struct {
	// Reopen gives a held file a new Opener from its ID and URL when its case is
	// named later. Required.
	Reopen func(f File) Opener
	// Escape makes text safe to embed in the platform's markup (Slack needs &, < and >
	// escaped). Applied to names and subjects that come from users; identity when nil.
	Escape func(string) string
	// Hold is how long a file waits for its case; DefaultHold when zero.
	Hold time.Duration
	// EventMemory is how long event ids are remembered; DefaultEventMemory when zero.
	EventMemory time.Duration
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
}

// Bot is the platform-neutral chat logic. It is safe for concurrent use.
type Bot struct {
	store Store
	cases Cases
	opt   Options
	log   *slog.Logger
	refs  casebook.RefFormat

	// unbound remembers channels already logged as unbound, so a busy unbound channel
	// logs once.
	unbound sync.Map
}

// New returns a Bot that reads bindings and thread state from store and writes
// through cases.
func New(store Store, cases Cases, opt Options) (*Bot, error) {
	if opt.Reopen == nil {
		return nil, errors.New("bots: Options.Reopen is required")
	}
	if opt.Escape == nil {
		opt.Escape = func(s string) string { return s }
	}
	if opt.Hold <= 0 {
		opt.Hold = DefaultHold
	}
	if opt.EventMemory <= 0 {
		opt.EventMemory = DefaultEventMemory
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Bot{store: store, cases: cases, opt: opt, log: opt.Logger, refs: cases.Refs()}, nil
}

// Run purges expired held files and old event ids every minute until ctx ends.
func (b *Bot) Run(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		now := b.opt.Now()
		files, events, err := b.store.PurgeChat(ctx, now, now.Add(-b.opt.EventMemory))
		switch {
		case err != nil && ctx.Err() == nil:
			b.log.WarnContext(ctx, "cannot purge chat state", slog.Any("error", err))
		case files > 0:
			b.log.InfoContext(ctx, "held chat files expired unclaimed", "files", files, "events", events)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// heldFile is a held file as kept in the store.
type heldFile struct {
	File
	MessageID  string `json:"message_id"`
	AuthorID   string `json:"author_id"`
	AuthorName string `json:"author_name"`
	Text       string `json:"text,omitempty"`
}

// HandleMessage decides what to do with m and does it: it attaches m's files (and any
// files held for the case it names) to the case, or asks which case they are for, or
// ignores m. Failures are logged here and reported to the channel in Reply.Text.
func (b *Bot) HandleMessage(ctx context.Context, m Message) Reply {
	refs := b.refs.FindAll(m.Text)
	// Most chat messages carry neither a file nor a case reference: they cost nothing.
	if len(m.Files) == 0 && len(refs) == 0 {
		return Reply{}
	}
	log := b.log.With("source", m.Platform, "workspace", m.Workspace, "channel", m.Channel, "message", m.MessageID)
	reply := Reply{Thread: m.ReplyThread()}

	bind, err := b.store.BindingFor(ctx, m.Platform, m.Workspace, m.Channel)
	if errors.Is(err, casebook.ErrBindingMissing) {
		if _, seen := b.unbound.LoadOrStore(string(m.Platform)+"/"+m.Workspace+"/"+m.Channel, true); !seen {
			log.InfoContext(ctx, "ignoring messages in a channel bound to no org")
		}
		return Reply{}
	}
	if err != nil {
		log.ErrorContext(ctx, "cannot read channel binding", slog.Any("error", err))
		return b.failed(reply, "")
	}

	if m.EventID != "" {
		fresh, err := b.store.ClaimChatEvent(ctx, m.Platform, m.EventID)
		if err != nil {
			log.ErrorContext(ctx, "cannot record chat event", "event", m.EventID, slog.Any("error", err))
			return b.failed(reply, "")
		}
		if !fresh {
			log.DebugContext(ctx, "event delivered again: ignored", "event", m.EventID)
			return Reply{}
		}
	}

	var held []heldFile
	if len(refs) == 1 {
		// The answer to "Which case is this for?": the files held in this thread, or this
		// author's when the answer is at the top of the channel.
		held, err = b.takeHeld(ctx, m)
		if err != nil {
			log.ErrorContext(ctx, "cannot read held files", slog.Any("error", err))
			return b.failed(reply, "")
		}
	}
	if len(m.Files) == 0 && len(held) == 0 {
		return Reply{}
	}

	var number int64
	matched := "text"
	switch len(refs) {
	case 0:
		if m.Thread == "" {
			return b.ask(ctx, log, m, reply, "")
		}
		number, err = b.store.ThreadCase(ctx, m.Platform, m.Workspace, m.Channel, m.Thread)
		switch {
		case errors.Is(err, casebook.ErrNotFound):
			return b.ask(ctx, log, m, reply, "")
		case err != nil:
			log.ErrorContext(ctx, "cannot read thread case", slog.Any("error", err))
			return b.failed(reply, "")
		}
		matched = "thread"
	case 1:
		number = refs[0]
	default:
		return b.ask(ctx, log, m, reply, fmt.Sprintf("This message names %s and %s. ", b.refs.Format(refs[0]), b.refs.Format(refs[1])))
	}
	reply.Case = number

	var lines []string
	var okCase *casebook.Case
	add := func(f heldFile, how string, body string) {
		line, c := b.attach(ctx, log, bind, number, f, how, body, m)
		if c != nil {
			reply.Attached++
			okCase = c
		} else if line != "" {
			reply.Refused++
		}
		if line != "" {
			lines = append(lines, line)
		}
	}
	for i, f := range m.Files {
		body := ""
		if i == 0 {
			body = m.Text
		}
		add(heldFile{File: f, MessageID: m.MessageID, AuthorID: m.AuthorID, AuthorName: m.AuthorName}, matched, body)
	}
	for _, h := range held {
		h.Open = b.opt.Reopen(h.File)
		add(h, "answer", h.Text)
	}

	switch {
	case reply.Attached > 0:
		reply.Kind = ReplyAttached
		if err := b.store.TieThread(ctx, m.Platform, m.Workspace, m.Channel, reply.Thread, okCase.Number); err != nil {
			log.WarnContext(ctx, "cannot tie thread to case", "case", b.refs.Format(okCase.Number), slog.Any("error", err))
		}
	case reply.Refused > 0:
		reply.Kind = ReplyRefused
	default:
		// Every file was stored already: a redelivery. The first delivery answered.
		return Reply{}
	}
	reply.Text = strings.Join(lines, "\n")
	return reply
}

// TieThread ties another thread key to a case, for adapters whose reply chains have
// more than one key (on Discord a reply to the bot's confirmation references the
// confirmation, not the upload).
func (b *Bot) TieThread(ctx context.Context, platform casebook.Source, workspace, channel, thread string, caseNumber int64) error {
	return b.store.TieThread(ctx, platform, workspace, channel, thread, caseNumber)
}

// attach adds one file to the case. It returns the line to show, and the case when the
// file was added (nil when refused, or stored already and the line is empty).
func (b *Bot) attach(ctx context.Context, log *slog.Logger, bind casebook.Binding, number int64, f heldFile, how, body string, m Message) (string, *casebook.Case) {
	name := b.name(f.Name)
	log = log.With("case", b.refs.Format(number), "external_id", f.ID)
	if max := b.cases.MaxFileSize(); f.Size > max {
		log.InfoContext(ctx, "chat file refused", "reason", "too large", "size", f.Size)
		return fmt.Sprintf("`%s` (%s) is larger than the %s limit: send a smaller file or split it.", name, casebook.FormatSize(f.Size), casebook.FormatSize(max)), nil
	}
	idKind := casebook.IdentitySlack
	if m.Platform == casebook.SourceDiscord {
		idKind = casebook.IdentityDiscord
	}
	u := casebook.Update{
		Source:       m.Platform,
		ExternalID:   f.ID,
		CaseNumber:   number,
		Author:       casebook.Author{Kind: idKind, Value: f.AuthorID, Name: f.AuthorName},
		ChannelOrgID: bind.OrgID,
		Body:         body,
		Files: func(yield func(casebook.File) error) error {
			r, err := f.Open(ctx, b.cases.MaxFileSize())
			if err != nil {
				return fmt.Errorf("download %s: %w", f.ID, err)
			}
			defer r.Close()
			return yield(casebook.File{Name: f.Name, ContentType: f.ContentType, Body: r})
		},
		Meta: map[string]string{
			"workspace": m.Workspace,
			"channel":   m.Channel,
			"thread":    m.ReplyThread(),
			"message":   f.MessageID,
			"matched":   how,
		},
	}
	out, err := b.cases.AddUpdate(ctx, u)
	if err == nil && out.Result == casebook.ResultDuplicate {
		log.InfoContext(ctx, "chat file stored already")
		return "", nil
	}
	if err == nil {
		c := out.Case
		size := f.Size
		if len(out.Attachments) == 1 {
			size = out.Attachments[0].Size
		}
		return fmt.Sprintf("Attached `%s` (%s) to %s — %s", name, casebook.FormatSize(size), b.refs.Format(c.Number), b.opt.Escape(c.Subject)), &c
	}
	ref := b.refs.Format(number)
	var pub *PublicError
	switch {
	case errors.As(err, &pub):
		log.WarnContext(ctx, "chat file refused", slog.Any("error", err))
		return fmt.Sprintf("`%s` was not attached: %s", name, pub.Public), nil
	case errors.Is(err, casebook.ErrUserDisabled):
		log.InfoContext(ctx, "chat file refused", "reason", "account disabled", slog.Any("error", err))
		return fmt.Sprintf("`%s` was not attached: your casebook account is disabled. Ask your support contact to enable it.", name), nil
	case errors.Is(err, casebook.ErrCaseNotFound), errors.Is(err, casebook.ErrNotAllowed):
		// A case of another org is answered exactly like a case that does not exist.
		log.InfoContext(ctx, "chat file refused", "reason", "case not found for this channel", slog.Any("error", err))
		return fmt.Sprintf("I can't find %s for this channel: check the case number and upload `%s` again.", ref, name), nil
	case errors.Is(err, casebook.ErrCaseClosed):
		log.InfoContext(ctx, "chat file refused", "reason", "case closed")
		return fmt.Sprintf("%s is closed and takes no more files: ask your support contact to open a new case, then upload `%s` again.", ref, name), nil
	case errors.Is(err, casebook.ErrFileTypeNotAllowed):
		log.InfoContext(ctx, "chat file refused", "reason", "file type not allowed", slog.Any("error", err))
		return fmt.Sprintf("`%s` was not attached: programs, scripts and web pages are not accepted. Send a PDF, an image or a document instead.", name), nil
	case errors.Is(err, casebook.ErrTooLarge):
		log.InfoContext(ctx, "chat file refused", "reason", "too large", slog.Any("error", err))
		return fmt.Sprintf("`%s` is larger than the %s limit: send a smaller file or split it.", name, casebook.FormatSize(b.cases.MaxFileSize())), nil
	case errors.Is(err, casebook.ErrInfected):
		// Logged and audited by the write path.
		return fmt.Sprintf("`%s` was not attached: our malware scan found something harmful in it. Check the file with your IT team before sending it again.", name), nil
	case errors.Is(err, casebook.ErrScanUnavailable):
		log.WarnContext(ctx, "chat file not checked", slog.Any("error", err))
		return fmt.Sprintf("`%s` could not be checked for malware right now, so it was not attached: please try again in a few minutes.", name), nil
	}
	log.ErrorContext(ctx, "cannot attach chat file", slog.Any("error", err))
	return fmt.Sprintf("`%s` was not attached because of an error on our side: please upload it again in a few minutes.", name), nil
}

// ask holds m's files and asks which case they are for.
func (b *Bot) ask(ctx context.Context, log *slog.Logger, m Message, reply Reply, why string) Reply {
	until := b.opt.Now().Add(b.opt.Hold)
	for _, f := range m.Files {
		data, err := json.Marshal(heldFile{File: f, MessageID: m.MessageID, AuthorID: m.AuthorID, AuthorName: m.AuthorName, Text: m.Text})
		if err == nil {
			err = b.store.HoldChatFile(ctx, m.Platform, m.Workspace, m.Channel, reply.Thread, m.AuthorID, f.ID, data, until)
		}
		if err != nil {
			log.ErrorContext(ctx, "cannot hold chat file", "external_id", f.ID, slog.Any("error", err))
			return b.failed(reply, b.name(f.Name))
		}
	}
	log.InfoContext(ctx, "asked which case chat files are for", "files", len(m.Files))
	reply.Kind = ReplyAsk
	reply.Text = fmt.Sprintf("%sWhich case is this for? Reply in this thread with the case number (like %s) within %d minutes.",
		why, b.refs.Format(123), int(b.opt.Hold.Minutes()))
	return reply
}

func (b *Bot) takeHeld(ctx context.Context, m Message) ([]heldFile, error) {
	rows, err := b.store.TakeChatFiles(ctx, m.Platform, m.Workspace, m.Channel, m.Thread, m.AuthorID, b.opt.Now())
	if err != nil {
		return nil, err
	}
	held := make([]heldFile, 0, len(rows))
	for _, r := range rows {
		var h heldFile
		if err := json.Unmarshal(r, &h); err != nil {
			return nil, fmt.Errorf("held file: %w", err)
		}
		held = append(held, h)
	}
	return held, nil
}

// failed is the reply when our side failed before any file was looked at.
func (b *Bot) failed(reply Reply, name string) Reply {
	reply.Kind = ReplyRefused
	what := "This upload"
	if name != "" {
		what = "`" + name + "`"
	}
	reply.Text = what + " was not attached because of an error on our side: please upload it again in a few minutes."
	return reply
}

// name makes a file name safe to show between backticks.
func (b *Bot) name(s string) string {
	return b.opt.Escape(strings.ReplaceAll(casebook.SanitizeFilename(s), "`", "'"))
}

// CaseStatus answers the `/case CASE-000123` command in a channel: the case's status
// and owner when the case belongs to the channel's org. It returns the text to show
// the person who asked, already escaped.
func (b *Bot) CaseStatus(ctx context.Context, platform casebook.Source, workspace, channel, arg string) string {
	bind, err := b.store.BindingFor(ctx, platform, workspace, channel)
	if errors.Is(err, casebook.ErrBindingMissing) {
		return "This channel is not linked to an organisation: ask your support contact to bind it."
	}
	if err != nil {
		b.log.ErrorContext(ctx, "cannot read channel binding", "source", platform, "channel", channel, slog.Any("error", err))
		return "Something failed on our side: please try again in a few minutes."
	}
	n, err := b.refs.Parse(arg)
	if err != nil {
		return fmt.Sprintf("Name one case, like `/case %s`.", b.refs.Format(123))
	}
	c, err := b.store.CaseByNumber(ctx, n)
	if errors.Is(err, casebook.ErrCaseNotFound) || (err == nil && c.OrgID != bind.OrgID) {
		return fmt.Sprintf("I can't find %s for this channel: check the case number.", b.refs.Format(n))
	}
	if err != nil {
		b.log.ErrorContext(ctx, "cannot read case", "case", b.refs.Format(n), slog.Any("error", err))
		return "Something failed on our side: please try again in a few minutes."
	}
	owner := c.OwnerName
	if owner == "" {
		owner = c.Owner
	}
	return fmt.Sprintf("%s — %s\nStatus: %s · Owner: %s · Files: %d", b.refs.Format(c.Number), b.opt.Escape(c.Subject), c.Status, b.opt.Escape(owner), c.Attachments)
}
