package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/alexedwards/scs/postgresstore"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/web"
	"github.com/casebookhq/casebook/ingest"
)

// WebConfig is the web page's part of Config.
type WebConfig struct {
	// HTTP is the listen address; empty turns the web page off.
	HTTP string
	// InsecureCookies drops the __Host- prefix and Secure, for plain-http localhost.
	InsecureCookies bool
	// BehindProxy trusts the last X-Forwarded-For entry as the client's address.
	BehindProxy bool
	TLSCert     string
	TLSKey      string
	// MaxFiles caps the files of one upload; each file is capped by --max-file-size.
	MaxFiles int
	// RequireMFA is whose accounts must enrol a second factor: staff, all or off.
	RequireMFA string
	// MFAKey seals TOTP secrets in the database; at least 32 bytes when set.
	MFAKey string
	// UploadTimeout is the whole deadline of one upload.
	UploadTimeout time.Duration
}

func (c *Config) webFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Web.HTTP, "http", "127.0.0.1:8080", "address of the web page; empty turns it off")
	fs.BoolVar(&c.Web.InsecureCookies, "insecure-cookies", false, "drop __Host- and Secure from the session cookie: only for plain-http localhost")
	fs.BoolVar(&c.Web.BehindProxy, "behind-proxy", false, "a reverse proxy that appends X-Forwarded-For is the only way in: take client addresses from it")
	fs.StringVar(&c.Web.TLSCert, "tls-cert", "", "certificate (PEM) for the web page to serve HTTPS itself")
	fs.StringVar(&c.Web.TLSKey, "tls-key", "", "private key (PEM) for --tls-cert")
	fs.IntVar(&c.Web.MaxFiles, "upload-max-files", 10, "most files one web upload may carry")
	fs.StringVar(&c.Web.RequireMFA, "require-mfa", string(web.MFAStaff), "whose accounts must set up a TOTP second factor right after their password: staff, all or off")
	fs.StringVar(&c.Web.MFAKey, "mfa-key", "", "secret of at least 32 bytes that seals TOTP secrets in the database (keep it out of the database's backups)")
	fs.DurationVar(&c.Web.UploadTimeout, "upload-timeout", 10*time.Minute, "deadline of a whole web upload: a stalled client cannot hold it open longer")
}

func (c *Config) validateWeb() error {
	var errs []error
	if c.Web.MaxFiles <= 0 {
		errs = append(errs, errors.New("--upload-max-files must be positive"))
	}
	if _, err := web.ParseMFAPolicy(c.Web.RequireMFA); err != nil {
		errs = append(errs, fmt.Errorf("--require-mfa (CASEBOOK_REQUIRE_MFA): %w", err))
	}
	if c.Web.MFAKey != "" && len(c.Web.MFAKey) < 32 {
		errs = append(errs, fmt.Errorf("--mfa-key (CASEBOOK_MFA_KEY) has %d bytes, need at least 32", len(c.Web.MFAKey)))
	}
	if c.Web.UploadTimeout <= 0 {
		errs = append(errs, errors.New("--upload-timeout must be positive"))
	}
	if (c.Web.TLSCert == "") != (c.Web.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if c.BaseURL != "" && !strings.HasPrefix(c.BaseURL, "https://") && !strings.HasPrefix(c.BaseURL, "http://") {
		errs = append(errs, fmt.Errorf("--base-url %q must start with https:// or http://", c.BaseURL))
	}
	return errors.Join(errs...)
}

var _ web.Store = (*postgres.Store)(nil)

// webComponents builds the web page, with extra endpoints mounted outside its session
// and cross-origin checks (pattern -> handler: Slack's Events API).
func (a *app) webComponents(ctx context.Context, extra map[string]http.Handler) ([]component, error) {
	if a.cfg.Web.HTTP == "" {
		return nil, nil
	}
	st, svc, blobs, err := a.core(ctx)
	if err != nil {
		return nil, err
	}
	lim, err := a.cfg.mailLimits()
	if err != nil {
		return nil, err
	}
	p, err := a.processor(ctx)
	if err != nil {
		return nil, err
	}
	desk, err := a.desk(ctx, ingest.Releaser{Raw: blobs, Processor: p})
	if err != nil {
		return nil, err
	}
	sessions := postgresstore.NewWithCleanupInterval(st.DB().DB, 5*time.Minute)
	srv, err := web.New(st, svc, blobs, web.Options{
		Desk:            desk,
		QuarantineFiles: ingest.QuarantinedFiles{Raw: blobs, Limits: lim},
		Addr:            a.cfg.Web.HTTP,
		BaseURL:         a.cfg.BaseURL,
		TLSCert:         a.cfg.Web.TLSCert,
		TLSKey:          a.cfg.Web.TLSKey,
		InsecureCookies: a.cfg.Web.InsecureCookies,
		BehindProxy:     a.cfg.Web.BehindProxy,
		MaxFileSize:     a.cfg.MaxFileSize,
		MaxFiles:        a.cfg.Web.MaxFiles,
		RequireMFA:      web.MFAPolicy(a.cfg.Web.RequireMFA),
		MFAKey:          []byte(a.cfg.Web.MFAKey),
		UploadTimeout:   a.cfg.Web.UploadTimeout,
		Refs:            a.refs(),
		MessageIDDomain: a.cfg.MailDomain,
		Sessions:        sessions,
		Extra:           extra,
		Wrap:            a.promMetrics().HTTP,
		Logger:          a.log.With("component", "web"),
	})
	if err != nil {
		sessions.StopCleanup()
		return nil, err
	}
	if a.cfg.Web.MFAKey == "" {
		a.log.Info("TOTP secrets are stored unsealed: set --mfa-key so that the database alone does not reveal them")
	}
	if a.cfg.Web.InsecureCookies {
		a.log.Warn("session cookies are not Secure (--insecure-cookies): use only on localhost")
	}
	return []component{{name: "web", run: func(ctx context.Context) error {
		defer sessions.StopCleanup()
		return srv.Run(ctx)
	}}}, nil
}

// issueTemporaryPassword mails u a temporary password and records it in the audit log.
func (a *app) issueTemporaryPassword(ctx context.Context, st *postgres.Store, u casebook.User, reason string, ttl time.Duration) (string, error) {
	code, _, err := web.IssueTemporaryPassword(ctx, st, u, web.TemporaryPassword{Reason: reason, TTL: ttl, MessageIDDomain: a.cfg.MailDomain})
	if err != nil {
		return "", err
	}
	if err := cliAudit(ctx, st, &u, "reset_request", "user:"+u.Email, "issued_by_cli_"+reason); err != nil {
		return "", err
	}
	return code, nil
}

func userResetPasswordCommand() command {
	return command{
		usage: "EMAIL",
		help:  "void a user's password, end their sessions, and email a temporary password (30 minutes)",
		run: func(ctx context.Context, a *app, args []string) error {
			st, u, err := a.userArg(ctx, args)
			if err != nil {
				return err
			}
			// Staff reset an account they fear is in other hands: the old password and
			// every session stop now, unlike the self-service reset, which a stranger
			// can ask for and so must not lock anybody out.
			ended, err := st.VoidPassword(ctx, u.ID)
			if err != nil {
				return err
			}
			ttl := 30 * time.Minute
			code, err := a.issueTemporaryPassword(ctx, st, u, casebook.ReasonReset, ttl)
			if err != nil {
				return err
			}
			out := struct {
				Email             string    `json:"email"`
				TemporaryPassword string    `json:"temporary_password"`
				ExpiresAt         time.Time `json:"expires_at"`
				SessionsEnded     int       `json:"sessions_ended"`
			}{u.Email, code, time.Now().Add(ttl).UTC().Truncate(time.Second), ended}
			return a.print(out, fmt.Sprintf("the old password of %s no longer works and %d session(s) ended\na temporary password is queued for mail: %s\nit works once, until %s",
				u.Email, ended, code, out.ExpiresAt.Local().Format(time.DateTime)))
		},
	}
}

func auditCommand() command {
	var caseRef, email, anchor string
	var limit int
	var verify bool
	return command{
		usage: "[--case CASE-000123] [--user EMAIL] [--limit N] [--verify [--anchor ID:HASH]]",
		help:  "print the audit log (logins, resets, password changes, case views, uploads, downloads, staff reads)",
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.StringVar(&caseRef, "case", "", "only rows about this case and its attachments")
			fs.StringVar(&email, "user", "", "only rows of this user")
			fs.IntVar(&limit, "limit", 1000, "at most this many rows, oldest first")
			fs.BoolVar(&verify, "verify", false, "also check the hash chain: an edited or deleted row fails")
			fs.StringVar(&anchor, "anchor", "", "with --verify: an anchor kept from `casebook audit anchor` or serve's log (ID:HASH); rows deleted from the end or a rewritten chain fail")
		},
		run: func(ctx context.Context, a *app, _ []string) error {
			var anchors []postgres.AuditAnchor
			if anchor != "" {
				if !verify {
					return fmt.Errorf("%w: --anchor goes with --verify", errUsage)
				}
				an, err := postgres.ParseAuditAnchor(anchor)
				if err != nil {
					return fmt.Errorf("%w: %v", errUsage, err)
				}
				anchors = append(anchors, an)
			}
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			f := postgres.AuditFilter{Limit: limit}
			object := "audit"
			if caseRef != "" {
				n, err := a.refs().Parse(caseRef)
				if err != nil {
					return err
				}
				f.Object = a.refs().Format(n)
				object = "audit:" + f.Object
			}
			if email != "" {
				u, err := st.UserByEmail(ctx, email)
				if err != nil {
					return err
				}
				f.UserID = u.ID
				object = "audit:user:" + u.Email
			}
			// Reading the log is itself recorded, before anything is shown.
			if err := cliAudit(ctx, st, nil, "audit_read", object, "success"); err != nil {
				return err
			}
			rows, err := st.AuditLog(ctx, f)
			if err != nil {
				return err
			}
			for _, e := range rows {
				user := "-"
				if e.UserID != nil {
					user = fmt.Sprint(*e.UserID)
				}
				where := e.IP
				if e.OSUser != "" {
					where += " (" + e.OSUser + ")"
				}
				human := fmt.Sprintf("%s  user %-5s %-16s %-32s %-26s %s", e.At.Local().Format(time.DateTime), user, e.Action, e.Object, e.Outcome, where)
				if err := a.print(e, human); err != nil {
					return err
				}
			}
			if verify {
				if err := st.VerifyAuditChain(ctx, anchors...); err != nil {
					return err
				}
				if !a.cfg.JSON {
					fmt.Fprintln(a.stdout, "audit chain intact")
				}
			}
			return nil
		},
	}
}

func auditAnchorCommand() command {
	return command{
		usage: "[--json]",
		help:  "print the newest audit row's id and hash, to keep outside the database for `audit --verify --anchor`",
		run: func(ctx context.Context, a *app, _ []string) error {
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			an, err := st.LatestAuditAnchor(ctx)
			if err != nil {
				return err
			}
			return a.print(an, an.String())
		},
	}
}
