package casebook

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Author says who wrote an update, as its channel knows them.
type Author struct {
	// UserID is set by channels that have authenticated a user (the web page).
	UserID int64
	// Kind and Value name the channel identity (an email address, a Slack user id).
	Kind  IdentityKind
	Value string
	// Name is a display name the channel offered, kept for the timeline.
	Name string
}

func (a Author) label() string {
	switch {
	case a.Name != "" && a.Value != "":
		return a.Name + " <" + a.Value + ">"
	case a.Value != "":
		return a.Value
	case a.Name != "":
		return a.Name
	}
	return "unknown"
}

// File is one file of an update. Body is read once, front to back.
type File struct {
	Name string
	// ContentType is what the sender declared; the stored type is sniffed from the bytes.
	ContentType string
	Inline      bool
	Body        io.Reader
}

// FileSeq yields an update's files one at a time, so that a channel can hand over
// streams it can read only once (a multipart request, a MIME message, a download).
// Each file's Body must be consumed before yield returns. FileSeq returns the first
// error from yield, or its own.
type FileSeq func(yield func(File) error) error

// Files returns a FileSeq over a fixed list.
func Files(files ...File) FileSeq {
	return func(yield func(File) error) error {
		for _, f := range files {
			if err := yield(f); err != nil {
				return err
			}
		}
		return nil
	}
}

// Checkpoint is a channel position advanced in the same transaction as the update, so
// that a crash between the two is impossible (an IMAP mailbox's last UID).
type Checkpoint struct {
	Channel string
	Key     string
	Value   string
}

// Update is what a channel asks to add to a case.
type Update struct {
	Source Source
	// ExternalID identifies the input in its channel (a mail hash, a Slack file id);
	// (Source, ExternalID) is unique, so a replay stores nothing.
	ExternalID string
	CaseNumber int64
	Author     Author
	// ChannelOrgID is the org a chat channel is bound to; the case must belong to it.
	ChannelOrgID int64
	// ProvenRecipient is set when the channel has proof that the author received
	// casebook's mail for this case (a reply token or a threading header). It lets any
	// contact of the case's org write, including one matched only by the org's domain.
	ProvenRecipient bool
	Body            string
	Files           FileSeq
	// Finish, when set, runs once Files are stored and before anything is committed,
	// for a channel that reads its input once and learns some of the update only at
	// its end: email adds a mail while reading it, and its external id (the digest of
	// the whole message), its text and its raw copy are known once the read is over.
	// Finish fills them in; ExternalID may be empty until then, and a replay is then
	// found by the commit.
	Finish func(u *Update) error
	// Meta is channel detail kept with the update (how the case was matched, thread ids).
	Meta       map[string]string
	Checkpoint *Checkpoint
	// Mails are queued in the update's transaction (a staff reply's case email), so
	// the mail exists exactly when the update does.
	Mails []OutboxMail
}

// Result says what AddUpdate did.
type Result string

// The results of a successful AddUpdate.
const (
	ResultAdded     Result = "added"
	ResultDuplicate Result = "duplicate"
)

// Outcome reports a successful AddUpdate.
type Outcome struct {
	Result      Result
	UpdateID    int64
	Case        Case
	Attachments []Attachment
	Reopened    bool
}

// StoredBlob is a file in the blob store.
type StoredBlob struct {
	// Key names the blob in the store: the SHA-256 of a plaintext blob, a keyed hash
	// of the content when blobs are encrypted.
	Key string
	// SHA256 is the plaintext's digest, kept with the attachment for users and audit.
	SHA256      string
	Size        int64
	ContentType string
}

// Blobs stores file contents, one blob per distinct content. A blob is never removed
// on the write path: identical content may be named by another update committed in
// the meantime. Blobs no row names are removed by SweepBlobs after a grace period.
type Blobs interface {
	// Put streams r into the store, refusing more than limit bytes with ErrTooLarge.
	Put(ctx context.Context, r io.Reader, limit int64) (StoredBlob, error)
}

// NewUpdate is a validated update ready to commit.
type NewUpdate struct {
	CaseID       int64
	Source       Source
	ExternalID   string
	AuthorUserID *int64
	Author       string
	Body         string
	Meta         map[string]string
	Attachments  []Attachment
	// Reopen moves a resolved case back to open.
	Reopen bool
	// Notify, when set, is queued for the case owner in the same transaction.
	Notify *OutboxMail
	// Mails are queued in the same transaction too; each gets the update's id.
	Mails      []OutboxMail
	Checkpoint *Checkpoint
}

// OutboxKind names the mails casebook sends.
type OutboxKind string

// The mails.
const (
	MailOwnerNotification OutboxKind = "owner_notification"
	MailCaseEmail         OutboxKind = "case_email"
	MailTemporaryPassword OutboxKind = "temporary_password"
)

// OutboxMail is a mail queued for the outbox worker. Data is the template's input,
// of the type of Kind.
type OutboxMail struct {
	Kind      OutboxKind `json:"kind"`
	CaseID    *int64     `json:"case_id,omitempty"`
	UpdateID  *int64     `json:"update_id,omitempty"`
	UserID    *int64     `json:"user_id,omitempty"`
	Recipient string     `json:"recipient"`
	MessageID string     `json:"message_id"`
	Data      MailData   `json:"data,omitempty"`
}

// OutboxStatus is where a queued mail stands.
type OutboxStatus string

// The outbox statuses.
const (
	OutboxPending    OutboxStatus = "pending"
	OutboxSent       OutboxStatus = "sent"
	OutboxFailed     OutboxStatus = "failed"
	OutboxSuppressed OutboxStatus = "suppressed"
)

// OutboxEntry is a queued mail with its delivery state, as the outbox worker claims it
// and `casebook outbox list` shows it.
type OutboxEntry struct {
	ID int64 `json:"id"`
	OutboxMail
	// CaseNumber is the number of the case the mail is about, 0 for none.
	CaseNumber    int64        `json:"case_number,omitempty"`
	Status        OutboxStatus `json:"status"`
	Attempts      int          `json:"attempts"`
	NextAttemptAt time.Time    `json:"next_attempt_at"`
	LastError     string       `json:"last_error,omitempty"`
	CreatedAt     time.Time    `json:"created_at"`
	SentAt        *time.Time   `json:"sent_at,omitempty"`
}

// UpdateStore is what AddUpdate needs from storage.
type UpdateStore interface {
	// CaseForUpdate returns the case numbered number (ErrCaseNotFound) and the user
	// the author is: by Author.UserID (ErrUserNotFound when it names nobody), else by
	// the identity (Kind, Value), nil when nobody holds it. Every update needs both
	// before its files, so they come in one round trip.
	CaseForUpdate(ctx context.Context, number int64, author Author) (Case, *User, error)
	UpdateIDByExternalID(ctx context.Context, source Source, externalID string) (int64, error)
	// CommitUpdate stores u in one transaction, or returns ErrDuplicate, or
	// ErrCaseClosed when the case closed meanwhile.
	CommitUpdate(ctx context.Context, u NewUpdate) (int64, error)
}

// Options tunes a Service.
type Options struct {
	Refs RefFormat
	// MaxFileSize caps each file; 25 MiB when zero.
	MaxFileSize int64
	// MaxFiles caps the files of one update; 200 when zero.
	MaxFiles int
	// MessageIDDomain is the right-hand side of the Message-IDs casebook mints.
	MessageIDDomain string
	Logger          *slog.Logger
	// Observer, when set, is told the outcome of every AddUpdate (metrics).
	Observer Observer
	// Scanner, when set, checks every file for malware before the update commits.
	Scanner Scanner
	// AllowUnscanned lets files through, with a warning, when the scanner cannot
	// answer; by default such an update fails with ErrScanUnavailable.
	AllowUnscanned bool
	// MalwareLog, when set, records every infected file refused (the audit log).
	MalwareLog MalwareLog
	// AllowedTypes, when not empty, are the only sniffed media types a file may have,
	// on every channel; RefusedTypes are refused whatever it says.
	AllowedTypes []string
}

// Service is the domain's entry point for channels.
type Service struct {
	store UpdateStore
	blobs Blobs
	opt   Options
	log   *slog.Logger
}

// NewService returns a Service writing through store and blobs.
func NewService(store UpdateStore, blobs Blobs, opt Options) *Service {
	if opt.MaxFileSize <= 0 {
		opt.MaxFileSize = 25 << 20
	}
	if opt.MaxFiles <= 0 {
		opt.MaxFiles = 200
	}
	if opt.MessageIDDomain == "" {
		opt.MessageIDDomain = "casebook.invalid"
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, blobs: blobs, opt: opt, log: opt.Logger}
}

// Refs returns the case reference format.
func (s *Service) Refs() RefFormat { return s.opt.Refs }

// MaxFileSize returns the per-file cap.
func (s *Service) MaxFileSize() int64 { return s.opt.MaxFileSize }

// AddUpdate is the one write path: every channel adds to a case through it.
// It resolves the case, checks the author may write to it, streams the files into the
// blob store, and commits the update, its attachments, the owner's notification and
// the channel checkpoint in one transaction. It is idempotent on (Source, ExternalID):
// a replay returns ResultDuplicate and commits nothing (with Finish, its files reach the
// blob store first: blobs no row names are swept after the grace period).
func (s *Service) AddUpdate(ctx context.Context, u Update) (out Outcome, err error) {
	defer func() { s.observe(u.Source, out, err) }()
	if u.Source == "" || (u.ExternalID == "" && u.Finish == nil) {
		return Outcome{}, fmt.Errorf("add update: %w: source and external id are required", ErrInvalidInput)
	}
	if u.ExternalID != "" {
		if id, err := s.store.UpdateIDByExternalID(ctx, u.Source, u.ExternalID); err == nil {
			return Outcome{Result: ResultDuplicate, UpdateID: id}, nil
		} else if !errors.Is(err, ErrNotFound) {
			return Outcome{}, fmt.Errorf("add update: %w", err)
		}
	}

	c, user, err := s.store.CaseForUpdate(ctx, u.CaseNumber, u.Author)
	if err != nil {
		return Outcome{}, fmt.Errorf("add update to %s: %w", s.opt.Refs.Format(u.CaseNumber), err)
	}
	author, err := authorize(c, user, u)
	if err != nil {
		return Outcome{}, fmt.Errorf("add update to %s: %w", s.opt.Refs.Format(c.Number), err)
	}
	if c.Status == StatusClosed {
		return Outcome{}, fmt.Errorf("add update to %s: %w", s.opt.Refs.Format(c.Number), ErrCaseClosed)
	}

	nu := NewUpdate{
		CaseID:     c.ID,
		Source:     u.Source,
		ExternalID: u.ExternalID,
		Author:     u.Author.label(),
		Body:       u.Body,
		Meta:       u.Meta,
		Checkpoint: u.Checkpoint,
		Mails:      u.Mails,
	}
	if author != nil {
		nu.AuthorUserID = &author.ID
		nu.Author = author.Email
		if author.Name != "" {
			nu.Author = author.Name + " <" + author.Email + ">"
		}
		nu.Reopen = !author.Staff && c.Status == StatusResolved
	} else {
		nu.Reopen = c.Status == StatusResolved
	}

	if u.Files != nil {
		err = u.Files(func(f File) error {
			if len(nu.Attachments) >= s.opt.MaxFiles {
				return fmt.Errorf("%w: more than %d", ErrTooManyFiles, s.opt.MaxFiles)
			}
			b, err := s.putFile(ctx, f)
			var inf *InfectedError
			if errors.As(err, &inf) {
				s.recordMalware(ctx, c, u, author, inf)
				return err
			}
			if err != nil {
				return fmt.Errorf("store %q: %w", SanitizeFilename(f.Name), err)
			}
			if err := s.checkType(f.Name, b); err != nil {
				return err
			}
			nu.Attachments = append(nu.Attachments, Attachment{
				Filename:    SanitizeFilename(f.Name),
				ContentType: b.ContentType,
				Size:        b.Size,
				SHA256:      b.SHA256,
				BlobKey:     b.Key,
				Inline:      f.Inline,
			})
			return nil
		})
	}
	if err == nil && u.Finish != nil {
		// A replay is found by the commit: the files are stored by now, and a look
		// first would cost every update a round trip to spare a rare replay nothing.
		err = finish(&u, &nu)
	}
	if err == nil && len(nu.Attachments) > 0 && (author == nil || author.ID != c.OwnerID) {
		nu.Notify = s.ownerNotification(c, nu)
	}
	var id int64
	if err == nil {
		id, err = s.store.CommitUpdate(ctx, nu)
	}
	if errors.Is(err, ErrDuplicate) {
		// A replay the look before the files did not see (a concurrent one, or an id
		// that came with Finish): named now, at no cost to the updates that are new.
		out := Outcome{Result: ResultDuplicate}
		if id, err := s.store.UpdateIDByExternalID(ctx, u.Source, nu.ExternalID); err == nil {
			out.UpdateID = id
		}
		return out, nil
	}
	if err != nil {
		// The blobs stay: the sweep removes those no row names once the grace period
		// is over (SweepBlobs).
		return Outcome{}, fmt.Errorf("add update to %s: %w", s.opt.Refs.Format(c.Number), err)
	}
	if nu.Reopen {
		c.Status = StatusOpen
	}
	c.Attachments += len(nu.Attachments)
	s.log.InfoContext(ctx, "update added", "case", s.opt.Refs.Format(c.Number), "source", u.Source,
		"external_id", u.ExternalID, "attachments", len(nu.Attachments), "reopened", nu.Reopen)
	return Outcome{Result: ResultAdded, UpdateID: id, Case: c, Attachments: nu.Attachments, Reopened: nu.Reopen}, nil
}

// finish runs u.Finish and takes what it filled in into nu.
func finish(u *Update, nu *NewUpdate) error {
	if err := u.Finish(u); err != nil {
		return fmt.Errorf("add update: %w", err)
	}
	if u.ExternalID == "" {
		return fmt.Errorf("add update: %w: no external id once the input was read", ErrInvalidInput)
	}
	nu.ExternalID, nu.Body, nu.Meta = u.ExternalID, u.Body, u.Meta
	return nil
}

// authorize applies DESIGN's rule: the author's identity belongs to the case's org, or
// the channel is bound to that org, or the channel proved the author received our
// mail for the case; and the author's account (user, nil when the author is nobody
// known), when there is one, is not disabled. It returns that user.
func authorize(c Case, user *User, u Update) (*User, error) {
	if u.ChannelOrgID != 0 && c.OrgID != u.ChannelOrgID {
		// A case of another org looks exactly like an unknown case.
		return nil, ErrCaseNotFound
	}
	// A disabled account's identities are refused even where the channel alone would
	// let them write: disabling is how staff cut a person off everywhere at once.
	if user != nil && user.Disabled {
		return nil, fmt.Errorf("%w: %s", ErrUserDisabled, user.Email)
	}
	if u.ChannelOrgID != 0 {
		return user, nil
	}
	if user != nil && (user.InOrg(c.OrgID) || user.Staff) {
		return user, nil
	}
	if u.ProvenRecipient && u.Author.Kind == IdentityEmail && c.OrgDomain != "" && emailDomainIs(u.Author.Value, c.OrgDomain) {
		return user, nil
	}
	return nil, ErrNotAllowed
}

func emailDomainIs(addr, domain string) bool {
	at := strings.LastIndexByte(addr, '@')
	return at > 0 && strings.EqualFold(addr[at+1:], domain)
}

func (s *Service) ownerNotification(c Case, nu NewUpdate) *OutboxMail {
	files := make([]NotifiedFile, 0, len(nu.Attachments))
	for _, a := range nu.Attachments {
		files = append(files, NotifiedFile{Name: a.Filename, Size: a.Size, ContentType: a.ContentType})
	}
	return &OutboxMail{
		Kind:      MailOwnerNotification,
		CaseID:    &c.ID,
		UserID:    &c.OwnerID,
		Recipient: c.Owner,
		MessageID: NewMessageID(s.opt.MessageIDDomain),
		Data: OwnerNotification{
			Case:    s.opt.Refs.Format(c.Number),
			Subject: c.Subject,
			Source:  nu.Source,
			Author:  nu.Author,
			Files:   files,
		},
	}
}

// NewMessageID mints an RFC 5322 msg-id with 130 random bits (rand.Text), so that a
// reply's In-Reply-To can name a case mail and nobody can guess one.
func NewMessageID(domain string) string {
	return "<" + strings.ToLower(rand.Text()) + "@" + domain + ">"
}
