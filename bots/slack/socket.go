package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/casebookhq/casebook/casebook"
)

// commandTimeout bounds the /case answer: Slack drops an ack later than 3 s.
const commandTimeout = 2 * time.Second

// Run handles events with h until ctx ends: it starts the workers that the Events API
// handler also feeds and, with an app token, keeps a Socket Mode connection open,
// reconnecting when it drops (Slack then delivers again what was not acknowledged).
func (s *Slack) Run(ctx context.Context, h Handler) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, q := range s.queues {
		wg.Go(func() { s.work(ctx, q) })
	}
	if s.cfg.AppToken == "" {
		<-ctx.Done()
		return ctx.Err()
	}

	smc := socketmode.New(s.api, socketmode.OptionLog(slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)))
	wg.Go(func() { s.events(ctx, smc, h, &wg) })
	err := smc.RunContext(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("slack socket mode: %w", explain(err))
}

// events reads what the Socket Mode client delivers. Every envelope is acknowledged
// before the work starts: Slack sends an envelope again when its ack is late (3 s).
func (s *Slack) events(ctx context.Context, smc *socketmode.Client, h Handler, wg *sync.WaitGroup) {
	for {
		var evt socketmode.Event
		select {
		case <-ctx.Done():
			return
		case evt = <-smc.Events:
		}
		switch evt.Type {
		case socketmode.EventTypeConnected:
			s.log.InfoContext(ctx, "slack socket connected")
		case socketmode.EventTypeConnectionError:
			s.log.WarnContext(ctx, "slack socket connection failed", slog.Any("error", errorOf(evt.Data)))
		case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed, socketmode.EventTypeErrorBadMessage:
			s.log.WarnContext(ctx, "slack socket error", "type", evt.Type, slog.Any("error", errorOf(evt.Data)))
		case socketmode.EventTypeEventsAPI:
			ev, ok := evt.Data.(slackevents.EventsAPIEvent)
			if !ok || evt.Request == nil {
				continue
			}
			if err := smc.AckCtx(ctx, evt.Request.EnvelopeID, nil); err != nil {
				continue
			}
			s.dispatch(ctx, job{h: h, ev: ev, id: eventID(ev)}, true)
		case socketmode.EventTypeSlashCommand:
			cmd, ok := evt.Data.(slack.SlashCommand)
			if !ok || evt.Request == nil {
				continue
			}
			// The answer rides on the ack; computed aside so that a slow database does not
			// hold back the acks of the envelopes behind it.
			envelope := evt.Request.EnvelopeID
			wg.Go(func() {
				cctx, cancel := context.WithTimeout(ctx, commandTimeout)
				text := h.CaseStatus(cctx, casebook.SourceSlack, cmd.TeamID, cmd.ChannelID, cmd.Text)
				cancel()
				smc.AckCtx(ctx, envelope, commandAnswer(text))
			})
		case socketmode.EventTypeInteractive:
			if evt.Request != nil {
				smc.AckCtx(ctx, evt.Request.EnvelopeID, nil)
			}
		}
	}
}

// commandAnswer is the /case reply, shown only to the person who asked.
func commandAnswer(text string) map[string]string {
	return map[string]string{"response_type": "ephemeral", "text": text}
}

func eventID(ev slackevents.EventsAPIEvent) string {
	if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok {
		return cb.EventID
	}
	return ""
}

func errorOf(data any) error {
	switch d := data.(type) {
	case *slack.ConnectionErrorEvent:
		return d.ErrorObj
	case *slack.IncomingEventError:
		return d.ErrorObj
	case *socketmode.ErrorWriteFailed:
		return d.Cause
	case *socketmode.ErrorBadMessage:
		return d.Cause
	}
	return errors.New("unknown socket mode error")
}
