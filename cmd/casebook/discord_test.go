package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/bwmarrin/discordgo"

	"github.com/casebookhq/casebook/bots/discord/discordtest"
	"github.com/casebookhq/casebook/casebook/syncbuf"
)

// TestServeDiscord runs `casebook serve` with the Discord bot against the fake Discord,
// configured only through CASEBOOK_DISCORD_* variables: an upload naming the case lands
// on it and is answered with a reply and ✅.
func TestServeDiscord(t *testing.T) {
	const guild, channel = "500000000000000001", "500000000000000002"
	c := newCLI(t)
	c.json("org", "add", "Acme Health")
	c.json("user", "add", "--org", "Acme Health", "--email", "alice@acme.test")
	c.json("user", "add", "--staff", "--email", "sam@support.test", "--name", "Sam")
	c.json("case", "open", "--org", "Acme Health", "--requester", "alice@acme.test", "--owner", "sam@support.test", "--subject", "Lab results")
	c.json("bind", "discord", channel, "--org", "Acme Health", "--guild", guild)

	fake := discordtest.New(t, discordtest.Options{})
	fake.AddChannel(guild, channel)
	t.Setenv("CASEBOOK_DISCORD_TOKEN", fake.Token())
	t.Setenv("CASEBOOK_DISCORD_APP_ID", fake.AppID())
	t.Setenv("CASEBOOK_DISCORD_API_URL", fake.URL)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var stderr syncbuf.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--database-url", c.url, "--data-dir", c.dir, "--http", ""}, io.Discard, &stderr)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d:\n%s", code, stderr.String())
		}
	}()

	fake.Ready()
	att := fake.AddFile(channel, "results.pdf", "application/pdf", []byte("%PDF-1.7 results"))
	id := fake.PostMessage(discordtest.Message{GuildID: guild, ChannelID: channel, AuthorID: "500000000000000003", AuthorName: "alice",
		Content: "for CASE-000001", Attachments: []*discordgo.MessageAttachment{att}})
	fake.Wait("the reply and the reaction", func() bool { return len(fake.Sent()) > 0 && len(fake.Reactions()) > 0 })
	if s := fake.Sent()[0]; s.Reference == nil || s.Reference.MessageID != id || s.Content != "Attached `results.pdf` (16 bytes) to CASE-000001 — Lab results" {
		t.Errorf("reply = %+v", s)
	}
	if r := fake.Reactions()[0]; r.MessageID != id || r.Emoji != "✅" {
		t.Errorf("reaction = %+v", r)
	}
}

func TestServeDiscordMessageContentDisabled(t *testing.T) {
	c := newCLI(t)
	fake := discordtest.New(t, discordtest.Options{})
	fake.DenyMessageContent()
	code, _, stderr := c.run("serve", "--http", "", "--discord-token", fake.Token(), "--discord-api-url", fake.URL)
	if code != 1 || !strings.Contains(stderr, "enable the Message Content intent") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
