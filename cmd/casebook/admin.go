package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
)

func migrateCommand() command {
	return command{
		usage: "",
		help:  "create the database if needed and apply schema migrations",
		run: func(ctx context.Context, a *app, _ []string) error {
			st, err := postgres.Open(ctx, a.cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer st.Close()
			applied, err := st.Migrate(ctx)
			if err != nil {
				return err
			}
			if applied == nil {
				applied = []string{}
			}
			human := "schema is up to date"
			if len(applied) > 0 {
				human = "applied " + strings.Join(applied, ", ")
			}
			return a.print(map[string]any{"applied": applied}, human)
		},
	}
}

func orgAddCommand() command {
	var domain string
	return command{
		usage: "NAME [--domain example.com]",
		help:  "add a customer organisation",
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.StringVar(&domain, "domain", "", "the org's email domain: proven reply senders at it may write to its cases")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("%w: give the org's name (quote it if it has spaces)", errUsage)
			}
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			o, err := st.AddOrg(ctx, args[0], domain)
			if err != nil {
				return err
			}
			return a.print(o, fmt.Sprintf("org %q added (id %d)", o.Name, o.ID))
		},
	}
}

func orgListCommand() command {
	return command{
		help: "list organisations",
		run: func(ctx context.Context, a *app, _ []string) error {
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			orgs, err := st.Orgs(ctx)
			if err != nil {
				return err
			}
			for _, o := range orgs {
				if err := a.print(o, fmt.Sprintf("%-6d %-30s %s", o.ID, o.Name, o.Domain)); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func userAddCommand() command {
	var org, email, name string
	var staff bool
	return command{
		usage: "--org ORG --email E [--name N] [--staff]",
		help:  "add a portal user and print a temporary password",
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.StringVar(&org, "org", "", "the customer's organisation (not for --staff)")
			fs.StringVar(&email, "email", "", "email address, also the login")
			fs.StringVar(&name, "name", "", "display name")
			fs.BoolVar(&staff, "staff", false, "a support specialist rather than a customer")
		},
		run: func(ctx context.Context, a *app, _ []string) error {
			if email == "" || (org == "" && !staff) {
				return fmt.Errorf("%w: --email is required, and --org unless --staff", errUsage)
			}
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			// No password yet: the account's only way in is the temporary password mailed
			// to it, which leads to choosing one's own.
			na := casebook.NewAccount{Email: email, Name: name, Staff: staff}
			if org != "" {
				o, err := st.OrgByName(ctx, org)
				if err != nil {
					return err
				}
				na.OrgID = &o.ID
			}
			by, err := a.cliActor(ctx, "")
			if err != nil {
				return err
			}
			u, temp, err := casebook.AddAccount(ctx, st, by, na, a.cfg.MailDomain)
			if err != nil {
				return err
			}
			out := struct {
				casebook.User
				TemporaryPassword string `json:"temporary_password"`
			}{u, temp}
			return a.print(out, fmt.Sprintf("user %s added (id %d)\ntemporary password: %s (also queued for mail)\nit works once within 7 days and must be replaced at the first login", u.Email, u.ID, temp))
		},
	}
}

func bindCommand() command {
	var org, team, guild string
	return command{
		usage: "slack|discord CHANNEL_ID --org ORG [--team TEAM_ID | --guild GUILD_ID]",
		help:  "let a Slack or Discord channel write to an org's cases",
		flags: func(fs *flag.FlagSet, _ *app) {
			fs.StringVar(&org, "org", "", "organisation whose cases the channel may write to")
			fs.StringVar(&team, "team", "", "Slack team (workspace) id; may be left out while the bot serves one workspace")
			fs.StringVar(&guild, "guild", "", "Discord guild (server) id")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if len(args) != 2 || org == "" {
				return fmt.Errorf("%w: name the platform, the channel id and --org", errUsage)
			}
			b := casebook.Binding{Platform: casebook.Source(args[0]), Channel: args[1]}
			switch b.Platform {
			case casebook.SourceSlack:
				b.Workspace = team
			case casebook.SourceDiscord:
				b.Workspace = guild
			default:
				return fmt.Errorf("%w: platform must be slack or discord, not %q", errUsage, args[0])
			}
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			o, err := st.OrgByName(ctx, org)
			if err != nil {
				return err
			}
			b.OrgID = o.ID
			if err := st.Bind(ctx, b); err != nil {
				return err
			}
			return a.print(b, fmt.Sprintf("%s channel %s now writes to %s's cases", b.Platform, b.Channel, o.Name))
		},
	}
}
