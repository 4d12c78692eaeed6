package main

import (
	"context"
	"fmt"
)

func userMFAResetCommand() command {
	return command{
		usage: "EMAIL",
		help:  "remove a user's second factor and recovery codes (a lost phone); the next login enrols again where --require-mfa asks for one",
		run: func(ctx context.Context, a *app, args []string) error {
			st, u, err := a.userArg(ctx, args)
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
			if err := cliAudit(ctx, st, &u, "mfa_reset", "user:"+u.Email, outcome); err != nil {
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
