// Command casebook runs the casebook service and is the staff's admin tool.
//
// Usage: casebook COMMAND [flags]. Every command takes --json, and every flag
// --foo-bar may be given as the variable CASEBOOK_FOO_BAR instead.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/clamav"
	"github.com/casebookhq/casebook/casebook/metrics"
	"github.com/casebookhq/casebook/casebook/oauth"
	"github.com/casebookhq/casebook/casebook/postgres"
)

// command is one verb of the CLI. run gets the positional arguments after flags.
type command struct {
	usage string
	help  string
	flags func(fs *flag.FlagSet, a *app)
	run   func(ctx context.Context, a *app, args []string) error
}

// commands lists every verb; "org add" is the key for `casebook org add`.
func commands() map[string]command {
	return map[string]command{
		"migrate":      migrateCommand(),
		"org add":      orgAddCommand(),
		"org list":     orgListCommand(),
		"user add":     userAddCommand(),
		"case open":    caseOpenCommand(),
		"case list":    caseListCommand(),
		"case show":    caseShowCommand(),
		"case close":   caseStatusCommand(casebook.Close),
		"case resolve": caseStatusCommand(casebook.Resolve),
		"case reopen":  caseStatusCommand(casebook.Reopen),
		"bind":         bindCommand(),
		"serve":        serveCommand(),
		"config":       configCommand(),
		"doctor":       doctorCommand(),
		"demo":         demoCommand(),
		"case reply":   caseReplyCommand(),
		"outbox list":  outboxListCommand(),
		"oauth login":  oauthLoginCommand(),

		"token-key rotate": tokenKeyRotateCommand(),

		// The blob store's commands.
		"blobs gc":      blobsGCCommand(),
		"blobs verify":  blobsVerifyCommand(),
		"blobs rekey":   blobsRekeyCommand(),
		"blobs encrypt": blobsEncryptCommand(),
		"blobs migrate": blobsMigrateCommand(),

		// The email channel's commands.
		"ingest":             ingestCommand(),
		"quarantine list":    quarantineListCommand(),
		"quarantine show":    quarantineShowCommand(),
		"quarantine release": quarantineReleaseCommand(),
		"quarantine drop":    quarantineDropCommand(),

		// The web page's commands.
		"user reset-password": userResetPasswordCommand(),
		"user mfa-reset":      userMFAResetCommand(),
		"audit":               auditCommand(),
		"audit anchor":        auditAnchorCommand(),

		// Account lifecycle.
		"user disable":  userDisableCommand(true),
		"user enable":   userDisableCommand(false),
		"user sessions": userSessionsCommand(),
		"user revoke":   userRevokeCommand(),
		"user unlock":   userUnlockCommand(),
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks a mistake in the command line: exit code 2.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	name, rest := findCommand(cmds, args)
	if name == "" {
		printUsage(stderr, cmds)
		if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			return 0
		}
		return 2
	}
	cmd := cmds[name]
	a := &app{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("casebook "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: casebook %s %s\n\n%s\n\n", name, cmd.usage, cmd.help)
		fs.PrintDefaults()
	}
	a.cfg.commonFlags(fs)
	if cmd.flags != nil {
		cmd.flags(fs, a)
	}
	pos, err := parseFlags(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "casebook %s: %v\n", name, err)
		return 2
	}
	if err := a.cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "casebook: configuration: %v\n", err)
		return 2
	}
	a.log = newLogger(stderr, a.cfg.LogLevel)
	defer a.close()
	if err := cmd.run(ctx, a, pos); err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "casebook %s: %v\nusage: casebook %s %s\n", name, err, name, cmd.usage)
			return 2
		}
		fmt.Fprintf(stderr, "casebook %s: %v\n", name, err)
		return 1
	}
	return 0
}

// findCommand matches the longest verb at the front of args ("case show" before "case").
func findCommand(cmds map[string]command, args []string) (string, []string) {
	for n := min(2, len(args)); n > 0; n-- {
		name := strings.Join(args[:n], " ")
		if _, ok := cmds[name]; ok {
			return name, args[n:]
		}
	}
	return "", args
}

func printUsage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: casebook COMMAND [flags]   (every flag --foo-bar is also CASEBOOK_FOO_BAR)")
	fmt.Fprintln(w)
	for _, n := range names {
		fmt.Fprintf(w, "  %-22s %s\n", n, cmds[n].help)
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: redactAttr}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, opts))
		}
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// app holds what a command builds from the config, opened on first use.
type app struct {
	cfg    Config
	log    *slog.Logger
	stdout io.Writer
	stderr io.Writer

	st      *postgres.Store
	blobs   *blob.Store
	key     *blob.Key
	service *casebook.Service
	metrics *metrics.Metrics
	admin   *metrics.Admin
	// oauth holds one token source per OAuth account the mailboxes and SMTP name.
	oauth *oauth.Sources
}

func (a *app) close() {
	if a.st != nil {
		a.st.Close()
	}
}

func (a *app) refs() casebook.RefFormat { return casebook.RefFormat{Prefix: a.cfg.CasePrefix} }

// store opens the database and refuses a schema this binary does not know.
func (a *app) store(ctx context.Context) (*postgres.Store, error) {
	if a.st != nil {
		return a.st, nil
	}
	key, err := a.blobKey()
	if err != nil {
		return nil, err
	}
	st, err := postgres.Open(ctx, a.cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := st.CheckSchema(ctx); err != nil {
		st.Close()
		return nil, err
	}
	if key != nil {
		st.SealSecretsWith(key)
	}
	if a.cfg.AuditKeyFile != "" {
		key, err := readAuditKey(a.cfg.AuditKeyFile)
		if err == nil {
			err = st.SetAuditKey(key)
		}
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("--audit-key-file: %w", err)
		}
	}
	a.st = st
	return st, nil
}

// blobKey reads --blob-key-file once; nil without one.
func (a *app) blobKey() (*blob.Key, error) {
	if a.key != nil || a.cfg.BlobKeyFile == "" {
		return a.key, nil
	}
	k, err := blob.ReadKeyFile(a.cfg.BlobKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--blob-key-file: %w", err)
	}
	a.key = k
	return k, nil
}

// core opens what every channel needs: the store, the domain service over it, and the
// blob store.
func (a *app) core(ctx context.Context) (*postgres.Store, *casebook.Service, *blob.Store, error) {
	svc, err := a.svc(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	return a.st, svc, a.blobs, nil
}

// svc returns the domain service over the store and blob store.
func (a *app) svc(ctx context.Context) (*casebook.Service, error) {
	if a.service != nil {
		return a.service, nil
	}
	st, bl, err := a.storeAndBlobs(ctx)
	if err != nil {
		return nil, err
	}
	opt := casebook.Options{
		Refs:            a.refs(),
		MaxFileSize:     a.cfg.MaxFileSize,
		MessageIDDomain: a.cfg.MailDomain,
		Observer:        a.promMetrics(),
		Logger:          a.log,
		AllowedTypes:    a.cfg.allowedTypes(),
		AllowUnscanned:  a.cfg.ScanUnavailable == scanAllow,
		MalwareLog:      st,
	}
	if a.cfg.Clamd != "" {
		// Validate checked the address.
		c, err := clamav.Parse(a.cfg.Clamd)
		if err != nil {
			return nil, err
		}
		opt.Scanner = c
	}
	a.service = casebook.NewService(st, bl, opt)
	return a.service, nil
}

// print writes v as one JSON line with --json, else the human text.
func (a *app) print(v any, human string) error {
	if a.cfg.JSON {
		return json.NewEncoder(a.stdout).Encode(v)
	}
	_, err := fmt.Fprintln(a.stdout, human)
	return err
}

// caseNumber parses a case reference argument.
func (a *app) caseNumber(args []string) (int64, error) {
	if len(args) != 1 {
		return 0, fmt.Errorf("%w: name one case, like %s", errUsage, a.refs().Format(123))
	}
	return a.refs().Parse(args[0])
}
