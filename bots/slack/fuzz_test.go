package slack_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/casebookhq/casebook/bots"
	"github.com/casebookhq/casebook/bots/slack"
	"github.com/casebookhq/casebook/bots/slack/slacktest"
	"github.com/casebookhq/casebook/casebook"
)

// recorder is a Handler that keeps what it is given and says nothing back.
type recorder struct {
	mu   sync.Mutex
	msgs []bots.Message
}

func (r *recorder) HandleMessage(_ context.Context, m bots.Message) bots.Reply {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	return bots.Reply{}
}

func (r *recorder) CaseStatus(context.Context, casebook.Source, string, string, string) string {
	return "status"
}

// FuzzEventsHandler posts correctly signed bodies of any shape to the Events API
// handler, whose workers turn what parses into messages: nothing may panic, and every
// answer is one Slack understands (200, or 400 for a malformed body, or 503 when busy).
// Seeds are in testdata/fuzz/FuzzEventsHandler.
func FuzzEventsHandler(f *testing.F) {
	fake := slacktest.New()
	f.Cleanup(fake.Close)
	s, err := slack.New(slack.Config{BotToken: slacktest.BotToken, SigningSecret: signingSecret, APIURL: fake.APIURL(), Workers: 2})
	if err != nil {
		f.Fatal(err)
	}
	h := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx, h) })
	f.Cleanup(func() { cancel(); wg.Wait() })
	handler := s.EventsHandler(h)

	f.Fuzz(func(t *testing.T, body []byte, form bool) {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/slack/events", bytes.NewReader(body))
		for k, v := range slacktest.Sign(signingSecret, time.Now(), body) {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/json")
		if form {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusServiceUnavailable:
		default:
			t.Errorf("status %d for %q", w.Code, body)
		}
	})
}
