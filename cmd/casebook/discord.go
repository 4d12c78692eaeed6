package main

import (
	"context"
	"flag"

	"github.com/casebookhq/casebook/bots/discord"
)

// DiscordConfig holds the Discord bot's settings.
type DiscordConfig struct {
	// Token is the bot token; empty leaves the Discord bot off.
	Token string
	// AppID is the application id the /case command is registered under.
	AppID string
	// APIURL, when set, is where discord.com, the gateway and the CDN hosts are reached
	// instead (tests and staging); unset in production.
	APIURL string
}

// discordFlags registers the Discord bot's flags, for the commands that serve.
func (c *Config) discordFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Discord.Token, "discord-token", "", "Discord bot token (Developer Portal → your app → Bot); turns the Discord bot on")
	fs.StringVar(&c.Discord.AppID, "discord-app-id", "", "Discord application id for the /case command; the bot user's id when empty")
	fs.StringVar(&c.Discord.APIURL, "discord-api-url", "", "reach discord.com, the gateway and Discord's CDN at this base URL instead (tests and staging only)")
}

// discordComponents runs the Discord bot when --discord-token is set.
func (a *app) discordComponents(ctx context.Context) ([]component, error) {
	d := a.cfg.Discord
	if d.Token == "" {
		return nil, nil
	}
	st, svc, blobs, err := a.core(ctx)
	if err != nil {
		return nil, err
	}
	b, err := discord.New(discord.Config{
		Token:  d.Token,
		AppID:  d.AppID,
		APIURL: d.APIURL,
		Held:   blobs,
		Logger: a.log,
	}, st, svc)
	if err != nil {
		return nil, err
	}
	return []component{{name: "discord", run: b.Run}}, nil
}
