package slack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/casebookhq/casebook/casebook"
)

// maxEventBody bounds an Events API request; Slack's event payloads are a few KB.
const maxEventBody = 1 << 20

// EventsHandler is the Events API Request URL (and the /case command's Request URL)
// for a workspace that cannot use Socket Mode. Every request must carry Slack's v0
// signature made with the signing secret within the last 5 minutes; an event is
// acknowledged (200) before it is handled, by the workers Run starts. Events are
// deduplicated by event_id, since Slack retries (X-Slack-Retry-Num) when it saw no
// 2xx within 3 s.
func (s *Slack) EventsHandler(h Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if s.cfg.SigningSecret == "" {
			http.Error(w, "the Events API is not configured", http.StatusNotFound)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBody))
		if err != nil {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := s.verify(r.Header, body); err != nil {
			s.log.WarnContext(r.Context(), "slack request refused", "remote", r.RemoteAddr, slog.Any("error", err))
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			s.command(w, r, h, body)
			return
		}
		ev, err := slackevents.ParseEvent(body, slackevents.OptionNoVerifyToken())
		if err != nil {
			http.Error(w, "malformed event", http.StatusBadRequest)
			return
		}
		switch ev.Type {
		case slackevents.URLVerification:
			var v slackevents.EventsAPIURLVerificationEvent
			if err := json.Unmarshal(body, &v); err != nil {
				http.Error(w, "malformed challenge", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, v.Challenge)
		case slackevents.CallbackEvent:
			// Queued, not handled here: the worker runs under Run's context, after the 200.
			if !s.dispatch(r.Context(), job{h: h, ev: ev, id: eventID(ev)}, false) {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
}

// verify checks Slack's signature and its 5-minute window (slack.NewSecretsVerifier).
func (s *Slack) verify(header http.Header, body []byte) error {
	sv, err := slack.NewSecretsVerifier(header, s.cfg.SigningSecret)
	if err != nil {
		return err
	}
	if _, err := sv.Write(body); err != nil {
		return err
	}
	return sv.Ensure()
}

// command answers a slash command posted to the Request URL.
func (s *Slack) command(w http.ResponseWriter, r *http.Request, h Handler, body []byte) {
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("command") == "" {
		http.Error(w, "malformed command", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
	defer cancel()
	text := h.CaseStatus(ctx, casebook.SourceSlack, form.Get("team_id"), form.Get("channel_id"), form.Get("text"))
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(commandAnswer(text)); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		s.log.WarnContext(r.Context(), "cannot answer slack command", slog.Any("error", err))
	}
}
