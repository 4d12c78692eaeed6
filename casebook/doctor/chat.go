package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// Slack is the Slack app casebook runs as.
type Slack struct {
	BotToken string
	// AppToken is the Socket Mode token; empty when events come over HTTP.
	AppToken string
	// Scopes are the bot token scopes needed; AppScope the app token's.
	Scopes   []string
	AppScope string
	// APIURL is the Web API base; Slack's when empty. Tests point it at a fake.
	APIURL string
	Client *http.Client
}

// SlackCheck calls auth.test with the bot token and compares the scopes Slack
// reports in X-OAuth-Scopes with those needed; with an app token it asks for a Socket
// Mode URL (apps.connections.open), which proves the token and its scope and opens
// nothing until a client dials it.
func SlackCheck(s Slack) Check {
	return Check{Name: "slack", Run: func(ctx context.Context) (string, error) {
		base := strings.TrimSuffix(s.APIURL, "/")
		if base == "" {
			base = "https://slack.com/api"
		}
		var who struct {
			slackOK
			Team string `json:"team"`
			User string `json:"user"`
		}
		hdr, err := slackCall(ctx, s.Client, base+"/auth.test", s.BotToken, &who)
		if err != nil {
			return "", fmt.Errorf("bot token: %w", err)
		}
		if !who.OK {
			return "", fmt.Errorf("bot token refused by auth.test (%s): copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page", who.Error)
		}
		granted := strings.Split(strings.ReplaceAll(hdr.Get("X-OAuth-Scopes"), " ", ""), ",")
		var missing []string
		for _, sc := range s.Scopes {
			if !slices.Contains(granted, sc) {
				missing = append(missing, sc)
			}
		}
		if len(missing) > 0 {
			return "", fmt.Errorf("bot %s in %s lacks scope(s) %s: add them under OAuth & Permissions and reinstall the app", who.User, who.Team, strings.Join(missing, ", "))
		}
		detail := fmt.Sprintf("bot %s in %s, scopes present", who.User, who.Team)
		if s.AppToken == "" {
			return detail + ", no Socket Mode token (events over HTTP)", nil
		}
		var conn slackOK
		if _, err := slackCall(ctx, s.Client, base+"/apps.connections.open", s.AppToken, &conn); err != nil {
			return "", fmt.Errorf("socket mode token: %w", err)
		}
		if !conn.OK {
			return "", fmt.Errorf("%s; but the Socket Mode token was refused (%s): make an app-level token (xapp-…) with %s under Basic Information and enable Socket Mode", detail, conn.Error, s.AppScope)
		}
		return detail + ", Socket Mode token valid", nil
	}}
}

type slackOK struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

func slackCall(ctx context.Context, client *http.Client, url, token string, v any) (http.Header, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Slack: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("slack answered %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return nil, fmt.Errorf("slack's answer: %w", err)
	}
	return resp.Header, nil
}

// Discord is the Discord bot casebook runs as.
type Discord struct {
	Token string
	// APIURL is the REST API base; Discord's v9 (the version discordgo speaks) when empty. Tests point it at a fake.
	APIURL string
	Client *http.Client
}

// Application flags that say the Message Content intent is enabled for the bot
// (Discord API, "Application Object", application flags).
const (
	flagGatewayMessageContent        = 1 << 18
	flagGatewayMessageContentLimited = 1 << 19
)

// DiscordCheck checks the bot token (GET /users/@me) and that the privileged Message
// Content intent is enabled (GET /applications/@me flags): without it the gateway
// refuses the bot with close code 4014.
func DiscordCheck(d Discord) Check {
	return Check{Name: "discord", Run: func(ctx context.Context) (string, error) {
		base := strings.TrimSuffix(d.APIURL, "/")
		if base == "" {
			base = "https://discord.com/api/v9"
		}
		var me struct {
			Username string `json:"username"`
			Bot      bool   `json:"bot"`
		}
		if err := discordGet(ctx, d, base+"/users/@me", &me); err != nil {
			return "", err
		}
		var app struct {
			Name  string `json:"name"`
			Flags int64  `json:"flags"`
		}
		if err := discordGet(ctx, d, base+"/applications/@me", &app); err != nil {
			return "", err
		}
		if app.Flags&(flagGatewayMessageContent|flagGatewayMessageContentLimited) == 0 {
			return "", fmt.Errorf("bot %s is valid, but the Message Content intent is off: enable it under Bot → Privileged Gateway Intents in the developer portal", me.Username)
		}
		return fmt.Sprintf("bot %s of %s is valid, Message Content intent enabled", me.Username, app.Name), nil
	}}
}

func discordGet(ctx context.Context, d Discord, url string, v any) error {
	client := d.Client
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// Discord wants the "Bot " prefix on bot tokens.
	req.Header.Set("Authorization", "Bot "+d.Token)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach Discord: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("discord refused the bot token (401): copy it again from the developer portal (Bot → Reset Token)")
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("discord answered %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("discord's answer: %w", err)
	}
	return nil
}
