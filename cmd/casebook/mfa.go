package main

import (
	"context"
	"fmt"
	"os"
	"os/user"

	"casebook/casebook/postgres"
)

// osUser names the person at the terminal for the audit log: the CLI has no login of
// its own, so the operating system's account is who ran it.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if n := os.Getenv("USER"); n != "" {
		return n
	}
	return "unknown"
}

func userMFAResetCommand() command {
	return command{
		usage: "EMAIL",
		help:  "remove a user's second factor and recovery codes (a lost phone); the next login enrols again where --require-mfa asks for one",
		run: func(ctx context.Context, a *app, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("%w: name the user's email address", errUsage)
			}
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			u, err := st.UserByEmail(ctx, args[0])
			if err != nil {
				return err
			}
			had, err := st.ResetSecondFactor(ctx, u.ID)
			if err != nil {
				return err
			}
			outcome := "success"
			if !had {
				outcome = "no_factor"
			}
			if err := st.Audit(ctx, postgres.AuditEntry{UserID: &u.ID, OrgID: u.OrgID, Action: "mfa_reset", Object: "user:" + u.Email,
				Outcome: outcome, IP: "cli", UserAgent: "os_user:" + osUser()}); err != nil {
				return err
			}
			out := struct {
				Email     string `json:"email"`
				HadFactor bool   `json:"had_factor"`
			}{u.Email, had}
			human := fmt.Sprintf("the second factor and recovery codes of %s are removed; the next login sets up a new one", u.Email)
			if !had {
				human = fmt.Sprintf("%s had no second factor; nothing to remove", u.Email)
			}
			return a.print(out, human)
		},
	}
}
