package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/clamav"
	"github.com/casebookhq/casebook/ingest"
)

// Config is everything casebook is configured with. It is filled from flags and
// CASEBOOK_* variables by one rule: flag --foo-bar ↔ variable CASEBOOK_FOO_BAR, and a
// flag on the command line wins. Secrets may also come from CASEBOOK_FOO_BAR_FILE.
type Config struct {
	DatabaseURL string
	DataDir     string
	// BlobURL names the blob store: file:///PATH or s3://BUCKET/PREFIX?…; empty is
	// the blobs directory under DataDir.
	BlobURL string
	// BlobKeyFile names the master key that encrypts blobs (and queued temporary
	// passwords); empty stores them in plaintext.
	BlobKeyFile string
	// BlobGrace is how long a blob no row names is kept before the sweep removes it.
	BlobGrace   time.Duration
	JSON        bool
	LogLevel    string
	CasePrefix  string
	MaxFileSize int64
	// MailDomain is the right-hand side of Message-IDs casebook mints.
	MailDomain string
	// ConfigFile holds CASEBOOK_* settings below the environment in precedence.
	ConfigFile string
	// Admin is the address of the admin listener (health, readiness, metrics).
	Admin string
	// ReplyAddress is where customers answer case mail (support@example.com); case mail
	// goes out with Reply-To: its plus-address carrying a signed reply token.
	ReplyAddress string
	// TokenKey signs reply tokens (HMAC-SHA256); at least 32 bytes.
	TokenKey string
	// BaseURL is the web page's public address, for links in mail and for HSTS.
	BaseURL string
	// Clamd is the malware scanner's address (tcp://HOST:PORT, unix:///PATH); empty
	// stores files unscanned.
	Clamd string
	// ScanUnavailable is what happens to files while clamd cannot answer: "block"
	// (refuse them; mail waits in the mailbox) or "allow" (store them unscanned).
	ScanUnavailable string
	// AuditKeyFile names the file holding the audit chain's HMAC key, which must not
	// live in the database.
	AuditKeyFile string
	// AllowedTypes, comma-separated, narrows the sniffed media types files may have on
	// every channel; programs and scripts are refused whatever it says.
	AllowedTypes string
	// ReplyTokenTTL is how long a reply token in case mail stays valid.
	ReplyTokenTTL time.Duration
	// Web holds the web page's settings (web.go).
	Web WebConfig
	// Mail holds the email channel's limits on one message (ingest.go).
	Mail MailConfig
	// Outbox holds the outbound mail settings (outbox.go).
	Outbox OutboxConfig
	// Discord holds the Discord bot's settings (discord.go).
	Discord DiscordConfig
	// Slack holds the Slack bot's settings (slack.go).
	Slack SlackConfig
	// IMAP holds the mailbox pollers' settings (imap.go).
	IMAP IMAPConfig
	// Backfill holds `casebook ingest --mailbox` settings (backfill.go).
	Backfill BackfillConfig
}

// secretFlags may be given as CASEBOOK_<NAME>_FILE, naming a file that holds the value.
var secretFlags = map[string]bool{"slack-bot-token": true, "slack-app-token": true, "slack-signing-secret": true, "discord-token": true, "smtp": true, "smtp-password": true, "token-key": true, "imap": true, "mfa-key": true}

// commonFlags registers the flags every command takes.
func (c *Config) commonFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DatabaseURL, "database-url", "postgres://postgres@127.0.0.1:5432/casebook?sslmode=disable", "PostgreSQL URL")
	fs.StringVar(&c.DataDir, "data-dir", "./casebook-data", "directory that keeps attachments")
	fs.StringVar(&c.BlobURL, "blob-url", "", "blob store: file:///var/lib/casebook/blobs or s3://BUCKET/PREFIX?endpoint=https://s3.example.com&region=us-east-1&path_style=true (default: --data-dir)")
	fs.StringVar(&c.BlobKeyFile, "blob-key-file", "", "file holding the 32-byte key (raw or base64) that encrypts attachments at rest")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON object (one per line for lists)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.CasePrefix, "case-prefix", "CASE", "word before case numbers, as in CASE-000123")
	fs.Int64Var(&c.MaxFileSize, "max-file-size", 25<<20, "largest attachment in bytes")
	fs.StringVar(&c.MailDomain, "mail-domain", "casebook.invalid", "domain of the Message-IDs casebook mints")
	fs.StringVar(&c.ConfigFile, "config", "", "file of CASEBOOK_NAME=value lines, below flags and the environment in precedence")
	fs.StringVar(&c.ReplyAddress, "reply-address", "", "address customers reply to, e.g. support@example.com (tokens ride on its plus-address)")
	fs.StringVar(&c.TokenKey, "token-key", "", "secret of at least 32 bytes that signs reply tokens")
	fs.StringVar(&c.BaseURL, "base-url", "", "public address of the web page, e.g. https://cases.example.com (links in mail)")
	fs.StringVar(&c.Clamd, "clamd", "", "malware scanner: tcp://127.0.0.1:3310 or unix:///run/clamav/clamd.ctl; empty stores files unscanned")
	fs.StringVar(&c.ScanUnavailable, "scan-unavailable", scanBlock, "while clamd cannot answer: block (refuse files; mail waits) or allow (store them unscanned, with a warning)")
	fs.StringVar(&c.AuditKeyFile, "audit-key-file", "", "file holding the audit log's HMAC key (at least 32 bytes), kept outside the database")
	fs.StringVar(&c.AllowedTypes, "allowed-types", "", "comma-separated media types files may have on every channel, e.g. application/pdf,image/png (default: all but programs and scripts)")
	fs.DurationVar(&c.ReplyTokenTTL, "reply-token-ttl", casebook.DefaultTokenTTL, "how long the reply token of a case mail stays valid")
}

// The values of --scan-unavailable.
const (
	scanBlock = "block"
	scanAllow = "allow"
)

// Validate checks the config before anything is built from it.
func (c *Config) Validate() error {
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("--database-url (CASEBOOK_DATABASE_URL) is empty"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir (CASEBOOK_DATA_DIR) is empty"))
	}
	if c.BlobURL != "" {
		if err := blob.CheckURL(c.BlobURL); err != nil {
			errs = append(errs, fmt.Errorf("--blob-url (CASEBOOK_BLOB_URL): %w", err))
		}
	}
	if c.MaxFileSize <= 0 {
		errs = append(errs, errors.New("--max-file-size must be positive"))
	}
	if c.CasePrefix == "" || strings.ContainsAny(c.CasePrefix, " -#0123456789") {
		errs = append(errs, fmt.Errorf("--case-prefix %q must be a word without digits, spaces, '-' or '#'", c.CasePrefix))
	}
	if c.TokenKey != "" && len(c.TokenKey) < 32 {
		errs = append(errs, fmt.Errorf("--token-key (CASEBOOK_TOKEN_KEY) has %d bytes, need at least 32", len(c.TokenKey)))
	}
	if c.Clamd != "" {
		if _, err := clamav.Parse(c.Clamd); err != nil {
			errs = append(errs, fmt.Errorf("--clamd (CASEBOOK_CLAMD): %w", err))
		}
	}
	if c.ScanUnavailable != scanBlock && c.ScanUnavailable != scanAllow {
		errs = append(errs, fmt.Errorf("--scan-unavailable %q must be %s or %s", c.ScanUnavailable, scanBlock, scanAllow))
	}
	if c.Mail.SenderAuth != "" {
		if _, err := ingest.ParseSenderAuth(c.Mail.SenderAuth); err != nil {
			errs = append(errs, fmt.Errorf("--sender-auth (CASEBOOK_SENDER_AUTH): %w", err))
		}
	}
	if r := c.Mail.DNSResolver; r != "" {
		if _, port, err := net.SplitHostPort(r); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("--dns-resolver (CASEBOOK_DNS_RESOLVER) %q is not HOST:PORT like 127.0.0.1:53", r))
		}
	}
	if c.ReplyTokenTTL <= 0 {
		errs = append(errs, errors.New("--reply-token-ttl must be positive"))
	}
	for _, t := range c.allowedTypes() {
		if !strings.Contains(t, "/") {
			errs = append(errs, fmt.Errorf("--allowed-types: %q is not a media type like application/pdf", t))
		}
	}
	if c.ReplyAddress != "" && !strings.Contains(strings.TrimPrefix(c.ReplyAddress, "@"), "@") {
		errs = append(errs, fmt.Errorf("--reply-address %q is not an address like support@example.com", c.ReplyAddress))
	}
	return errors.Join(errs...)
}

// allowedTypes splits --allowed-types; nil when it is empty.
func (c *Config) allowedTypes() []string { return splitList(c.AllowedTypes) }

// splitList splits a comma-separated flag, lower-cased, dropping blanks.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.ToLower(strings.TrimSpace(item)); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseFlags parses args with flags and positionals in any order, then fills every flag
// not given on the command line from its CASEBOOK_* variable.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	lookup, err := configLookup(fs, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return pos, applyEnv(fs, lookup)
}

// listValue is a repeatable flag; from the environment it takes space-separated items.
type listValue struct{ items *[]string }

func (l listValue) String() string {
	if l.items == nil {
		return ""
	}
	return strings.Join(*l.items, " ")
}

func (l listValue) Set(s string) error {
	*l.items = append(*l.items, s)
	return nil
}

func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := envName(f.Name)
		v, ok := lookup(name)
		if !ok && secretFlags[f.Name] {
			if path, fok := lookup(name + "_FILE"); fok {
				b, err := os.ReadFile(path)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s_FILE: %w", name, err))
					return
				}
				v, ok = strings.TrimRight(string(b), "\r\n"), true
			}
		}
		if !ok {
			return
		}
		if lv, isList := f.Value.(listValue); isList {
			for _, item := range strings.Fields(v) {
				lv.Set(item)
			}
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	})
	return errors.Join(errs...)
}

// envName maps a flag name to its variable: database-url → CASEBOOK_DATABASE_URL.
func envName(flagName string) string {
	return "CASEBOOK_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
