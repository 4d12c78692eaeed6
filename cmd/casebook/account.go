package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/web"
)

// osUser names the operating-system account running the command, for the audit log:
// staff share the database role, not their login.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if n := os.Getenv("USER"); n != "" {
		return n
	}
	return "unknown"
}

// cliAudit appends an audit row for a staff command, with the OS user who ran it.
func cliAudit(ctx context.Context, st *postgres.Store, u *casebook.User, action, object, outcome string) error {
	e := casebook.AuditEntry{Action: action, Object: object, Outcome: outcome, IP: "cli", OSUser: osUser()}
	if u != nil {
		e.UserID, e.OrgID = &u.ID, u.OrgID
	}
	return st.Audit(ctx, e)
}

// readAuditKey reads the audit key; a trailing newline (echo, an editor) is not part
// of it.
func readAuditKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return []byte(strings.TrimRight(string(b), "\r\n")), nil
}

// userArg finds the user named by the one positional argument.
func (a *app) userArg(ctx context.Context, args []string) (*postgres.Store, casebook.User, error) {
	if len(args) != 1 {
		return nil, casebook.User{}, fmt.Errorf("%w: name the user's email address", errUsage)
	}
	st, err := a.store(ctx)
	if err != nil {
		return nil, casebook.User{}, err
	}
	u, err := st.UserByEmail(ctx, args[0])
	return st, u, err
}

// accountResult is what the lifecycle commands print with --json.
type accountResult struct {
	Email         string `json:"email"`
	Disabled      bool   `json:"disabled"`
	SessionsEnded int    `json:"sessions_ended"`
}

func userDisableCommand(disable bool) command {
	verb, help := "enable", "let a disabled user log in and write again"
	if disable {
		verb, help = "disable", "stop a user: no login, every session ends now, chat and mail from them are refused"
	}
	return command{
		usage: "EMAIL",
		help:  help,
		run: func(ctx context.Context, a *app, args []string) error {
			st, u, err := a.userArg(ctx, args)
			if err != nil {
				return err
			}
			ended, err := st.SetUserDisabled(ctx, u.ID, disable)
			if err != nil {
				return err
			}
			if err := cliAudit(ctx, st, &u, "user_"+verb, "user:"+u.Email, "success"); err != nil {
				return err
			}
			human := fmt.Sprintf("%s is %sd", u.Email, verb)
			if disable {
				human += fmt.Sprintf("; %d session(s) ended", ended)
			}
			return a.print(accountResult{Email: u.Email, Disabled: disable, SessionsEnded: ended}, human)
		},
	}
}

func userSessionsCommand() command {
	return command{
		usage: "EMAIL [--json]",
		help:  "list a user's web sessions: when and from where each began, when it ends",
		run: func(ctx context.Context, a *app, args []string) error {
			st, u, err := a.userArg(ctx, args)
			if err != nil {
				return err
			}
			ss, err := st.UserSessions(ctx, u.ID, "")
			if err != nil {
				return err
			}
			if err := cliAudit(ctx, st, &u, "sessions_view", "user:"+u.Email, "success"); err != nil {
				return err
			}
			if len(ss) == 0 && !a.cfg.JSON {
				return a.print(nil, u.Email+" has no session")
			}
			for _, s := range ss {
				human := fmt.Sprintf("%-6d since %s  until %s  %-16s %s", s.ID, s.CreatedAt.Local().Format(time.DateTime),
					s.ExpiresAt.Local().Format(time.DateTime), s.IP, s.UserAgent)
				if err := a.print(s, human); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func userRevokeCommand() command {
	return command{
		usage: "EMAIL",
		help:  "end every web session of a user now (the password keeps working)",
		run: func(ctx context.Context, a *app, args []string) error {
			st, u, err := a.userArg(ctx, args)
			if err != nil {
				return err
			}
			_, ended, err := st.RevokeSessions(ctx, u.ID, "")
			if err != nil {
				return err
			}
			if err := cliAudit(ctx, st, &u, "sessions_revoke", "user:"+u.Email, fmt.Sprintf("ended_%d", ended)); err != nil {
				return err
			}
			return a.print(accountResult{Email: u.Email, Disabled: u.Disabled, SessionsEnded: ended},
				fmt.Sprintf("%d session(s) of %s ended", ended, u.Email))
		},
	}
}

func userUnlockCommand() command {
	return command{
		usage: "EMAIL",
		help:  "lift the login lock of an account, for strangers and its known browsers",
		run: func(ctx context.Context, a *app, args []string) error {
			st, u, err := a.userArg(ctx, args)
			if err != nil {
				return err
			}
			key, prefix := web.UnlockKeys(u.Email, u.ID)
			n, err := st.ClearLoginLocks(ctx, key, prefix)
			if err != nil {
				return err
			}
			if err := cliAudit(ctx, st, &u, "user_unlock", "user:"+u.Email, "success"); err != nil {
				return err
			}
			out := struct {
				Email   string `json:"email"`
				Cleared int64  `json:"cleared"`
			}{u.Email, n}
			return a.print(out, fmt.Sprintf("%s is unlocked (%d failure record(s) cleared)", u.Email, n))
		},
	}
}
