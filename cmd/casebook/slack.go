package main

import (
	"context"
	"flag"
	"net/http"

	"github.com/casebookhq/casebook/bots"
	"github.com/casebookhq/casebook/bots/slack"
)

// slackEventsPath is where the Events API (and the /case command) reach the web page
// when the Slack app uses Request URLs instead of Socket Mode.
const slackEventsPath = "POST /slack/events"

// SlackConfig holds the Slack bot's settings.
type SlackConfig struct {
	// BotToken (xoxb-) turns the Slack bot on.
	BotToken string
	// AppToken (xapp-, scope connections:write) receives events over Socket Mode.
	AppToken string
	// SigningSecret verifies Events API requests mounted on the web page.
	SigningSecret string
	// APIURL is Slack's Web API base URL; tests point it at a fake.
	APIURL string
}

// slackFlags registers the Slack bot's flags, for the commands that serve.
func (c *Config) slackFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Slack.BotToken, "slack-bot-token", "", "Slack bot token (xoxb-…); turns the Slack bot on")
	fs.StringVar(&c.Slack.AppToken, "slack-app-token", "", "Slack app-level token (xapp-…, scope connections:write) for Socket Mode")
	fs.StringVar(&c.Slack.SigningSecret, "slack-signing-secret", "", "Slack signing secret: receive events over HTTP at "+slackEventsPath[len("POST "):]+" on the web page")
	fs.StringVar(&c.Slack.APIURL, "slack-api-url", "", "Slack Web API base URL; Slack's when empty (tests point it at a fake)")
}

// slackComponents runs the Slack bot when --slack-bot-token is set: Socket Mode with
// --slack-app-token, and the Events API with --slack-signing-secret, whose handler it
// returns for the web page to mount. It checks the tokens and their scopes first, so
// a missing scope stops the start.
func (a *app) slackComponents(ctx context.Context) ([]component, http.Handler, error) {
	c := a.cfg.Slack
	if c.BotToken == "" {
		return nil, nil, nil
	}
	st, svc, _, err := a.core(ctx)
	if err != nil {
		return nil, nil, err
	}
	log := a.log.With("component", "slack")
	s, err := slack.New(slack.Config{BotToken: c.BotToken, AppToken: c.AppToken, SigningSecret: c.SigningSecret, APIURL: c.APIURL, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	if err := s.Check(ctx); err != nil {
		return nil, nil, err
	}
	bot, err := bots.New(st, svc, bots.Options{Reopen: s.Reopen, Escape: slack.Escape, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	var events http.Handler
	if c.SigningSecret != "" {
		events = s.EventsHandler(bot)
	}
	return []component{
		{name: "slack", run: func(ctx context.Context) error { return s.Run(ctx, bot) }},
		{name: "slack state", run: bot.Run},
	}, events, nil
}
