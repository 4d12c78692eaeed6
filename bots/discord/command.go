package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/casebookhq/casebook/bots"
	"github.com/casebookhq/casebook/casebook"
)

// commands is the /case slash command. An attachment option carries a file without
// the privileged Message Content intent.
var commands = []*discordgo.ApplicationCommand{{
	Name:        "case",
	Description: "Support cases",
	// Only in servers: a direct message is no channel an org can bind.
	Contexts: &[]discordgo.InteractionContextType{discordgo.InteractionContextGuild},
	Options: []*discordgo.ApplicationCommandOption{
		{
			Type:        discordgo.ApplicationCommandOptionSubCommand,
			Name:        "attach",
			Description: "Attach a file to a case",
			Options: []*discordgo.ApplicationCommandOption{
				{Type: discordgo.ApplicationCommandOptionString, Name: "case", Description: "Case number, like CASE-000123 or 123", Required: true},
				{Type: discordgo.ApplicationCommandOptionAttachment, Name: "file", Description: "The file", Required: true},
			},
		},
		{
			Type:        discordgo.ApplicationCommandOptionSubCommand,
			Name:        "show",
			Description: "Show a case's status and owner",
			Options: []*discordgo.ApplicationCommandOption{
				{Type: discordgo.ApplicationCommandOptionString, Name: "number", Description: "Case number, like CASE-000123 or 123", Required: true},
			},
		},
	},
}}

// registerCommands puts /case in place as a global command (a bulk overwrite, so a
// restart does not duplicate it).
func (b *Bot) registerCommands(ctx context.Context) error {
	app := b.cfg.AppID
	if app == "" && b.session.State != nil && b.session.State.User != nil {
		app = b.session.State.User.ID
	}
	if _, err := b.session.ApplicationCommandBulkOverwrite(app, "", commands, discordgo.WithContext(ctx)); err != nil {
		return fmt.Errorf("discord: register /case: %w", err)
	}
	return nil
}

// onInteractionCreate answers /case. Discord voids an interaction not answered within
// three seconds, so the response is deferred at once, before any work, and the
// result follows as a followup message.
func (b *Bot) onInteractionCreate(s *discordgo.Session, ic *discordgo.InteractionCreate) {
	in := ic.Interaction
	if in.Type != discordgo.InteractionApplicationCommand || in.GuildID == "" {
		return
	}
	data := in.ApplicationCommandData()
	if data.Name != "case" || len(data.Options) != 1 {
		return
	}
	sub := data.Options[0]
	var flags discordgo.MessageFlags
	if sub.Name == "show" {
		// A status lookup is for the person who asked.
		flags = discordgo.MessageFlagsEphemeral
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	b.wg.Go(func() {
		ctx, cancel := context.WithTimeout(b.base, interactionWork)
		defer cancel()
		err := s.InteractionRespond(in, &discordgo.InteractionResponse{
			Type: discordgo.InteractionResponseDeferredChannelMessageWithSource,
			Data: &discordgo.InteractionResponseData{Flags: flags},
		}, discordgo.WithContext(ctx))
		if err != nil {
			b.log.ErrorContext(ctx, "cannot defer discord interaction", "interaction", in.ID, slog.Any("error", err))
			return
		}
		text := b.command(ctx, in, sub)
		_, err = s.FollowupMessageCreate(in, true, &discordgo.WebhookParams{
			Content: clip(text), Flags: flags, AllowedMentions: noMentions(),
		}, discordgo.WithContext(ctx))
		if err != nil {
			b.log.ErrorContext(ctx, "cannot follow up discord interaction", "interaction", in.ID, slog.Any("error", err))
		}
	})
}

// interactionWork bounds the work of one slash command: the interaction token that
// followups use lasts 15 minutes.
const interactionWork = 10 * time.Minute

// command runs a /case subcommand and returns the text of the followup.
func (b *Bot) command(ctx context.Context, in *discordgo.Interaction, sub *discordgo.ApplicationCommandInteractionDataOption) string {
	channel, thread, err := b.place(ctx, in.ChannelID)
	if err != nil {
		b.log.ErrorContext(ctx, "cannot look up discord channel", "channel", in.ChannelID, slog.Any("error", err))
		return "Something failed on our side: please try again in a few minutes."
	}
	opts := map[string]*discordgo.ApplicationCommandInteractionDataOption{}
	for _, o := range sub.Options {
		opts[o.Name] = o
	}
	switch sub.Name {
	case "show":
		arg := ""
		if o := opts["number"]; o != nil {
			arg = o.StringValue()
		}
		return b.chat.CaseStatus(ctx, casebook.SourceDiscord, in.GuildID, channel, arg)
	case "attach":
		return b.attachCommand(ctx, in, channel, thread, opts)
	}
	return "Unknown command: use `/case attach` or `/case show`."
}

func (b *Bot) attachCommand(ctx context.Context, in *discordgo.Interaction, channel, thread string, opts map[string]*discordgo.ApplicationCommandInteractionDataOption) string {
	if _, err := b.store.BindingFor(ctx, casebook.SourceDiscord, in.GuildID, channel); errors.Is(err, casebook.ErrBindingMissing) {
		return "This channel is not linked to an organisation: ask your support contact to bind it."
	} else if err != nil {
		b.log.ErrorContext(ctx, "cannot read channel binding", "channel", channel, slog.Any("error", err))
		return "Something failed on our side: please try again in a few minutes."
	}
	caseOpt, fileOpt := opts["case"], opts["file"]
	if caseOpt == nil || fileOpt == nil {
		return fmt.Sprintf("Name a case and a file, like `/case attach case:%s file:…`.", b.refs.Format(123))
	}
	number, err := b.refs.Parse(caseOpt.StringValue())
	if err != nil {
		return fmt.Sprintf("Name one case, like `/case attach case:%s`.", b.refs.Format(123))
	}
	id, _ := fileOpt.Value.(string)
	data := in.ApplicationCommandData()
	var att *discordgo.MessageAttachment
	if data.Resolved != nil {
		att = data.Resolved.Attachments[id]
	}
	if att == nil {
		return "Discord sent no file with the command: try again."
	}
	user := in.User
	if in.Member != nil && in.Member.User != nil {
		user = in.Member.User
	}
	if user == nil {
		return "Discord did not say who sent the command: try again."
	}
	reply := b.chat.HandleMessage(ctx, bots.Message{
		Platform:   casebook.SourceDiscord,
		Workspace:  in.GuildID,
		Channel:    channel,
		Thread:     thread,
		MessageID:  in.ID,
		EventID:    in.ID,
		AuthorID:   user.ID,
		AuthorName: user.Username,
		Text:       b.refs.Format(number),
		Files:      []bots.File{b.file(att)},
	})
	if reply.Kind == bots.ReplyNone {
		return fmt.Sprintf("`%s` is on %s already.", casebook.SanitizeFilename(att.Filename), b.refs.Format(number))
	}
	mark := "✅ "
	if reply.Kind != bots.ReplyAttached {
		mark = "❌ "
	}
	return mark + reply.Text
}
