package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/casebookhq/casebook/bots/slack/slacktest"
)

// TestServeSlack runs `casebook serve` with the Slack bot against the fake Slack: an
// upload over Socket Mode lands on the case and is answered in its thread, and /case
// reaches the Events API endpoint mounted on the web page.
func TestServeSlack(t *testing.T) {
	c := newCLI(t)
	c.json("org", "add", "Acme Health")
	c.json("user", "add", "--org", "Acme Health", "--email", "alice@acme.test")
	c.json("user", "add", "--staff", "--email", "sam@support.test", "--name", "Sam")
	c.json("case", "open", "--org", "Acme Health", "--requester", "alice@acme.test", "--owner", "sam@support.test", "--subject", "Lab results")
	c.json("bind", "slack", "C0BOUND", "--org", "Acme Health", "--team", slacktest.TeamID)

	fake := slacktest.New()
	t.Cleanup(fake.Close)
	web := freeAddr(t)
	const secret = "test-signing-secret"
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--database-url", c.url, "--data-dir", c.dir, "--http", web, "--insecure-cookies",
			"--slack-bot-token", slacktest.BotToken, "--slack-app-token", slacktest.AppToken,
			"--slack-signing-secret", secret, "--slack-api-url", fake.APIURL()}, io.Discard, &stderr)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d:\n%s", code, stderr.String())
		}
	}()

	f := fake.AddFile(slacktest.File{ID: "F1", Name: "results.pdf", Mimetype: "application/pdf", Content: []byte("%PDF-1.7 results")})
	fake.SendEvent("Ev1", slacktest.MessageEvent{Type: "message", SubType: "file_share", Channel: "C0BOUND", User: "U1",
		Text: "for CASE-000001", TS: "100.1", Files: []goslack.File{f}})
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := fake.Wait(wctx, func(s *slacktest.Server) bool { return len(s.Posts()) > 0 }); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if p := fake.Posts()[0]; p.ThreadTS != "100.1" || p.Text != "Attached `results.pdf` (16 bytes) to CASE-000001 — Lab results" {
		t.Errorf("post = %+v", p)
	}

	body := []byte(url.Values{"command": {"/case"}, "text": {"CASE-000001"}, "team_id": {slacktest.TeamID}, "channel_id": {"C0BOUND"}}.Encode())
	var answer string
	for answer == "" {
		req, err := http.NewRequestWithContext(wctx, http.MethodPost, "http://"+web+"/slack/events", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = slacktest.Sign(secret, time.Now(), body)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			select {
			case <-wctx.Done():
				t.Fatalf("web page never answered: %v\n%s", err, stderr.String())
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/slack/events: %d %s", resp.StatusCode, b)
		}
		answer = string(b)
	}
	if !strings.Contains(answer, `CASE-000001 — Lab results\nStatus: open · Owner: Sam · Files: 1`) {
		t.Errorf("/case answer = %s", answer)
	}
}

func TestServeSlackMissingScope(t *testing.T) {
	c := newCLI(t)
	fake := slacktest.New()
	t.Cleanup(fake.Close)
	fake.SetScopes(slices.DeleteFunc(slices.Clone(slacktest.BotScopes), func(s string) bool { return s == "reactions:write" }), []string{"connections:write"})
	code, _, stderr := c.run("serve", "--http", "", "--slack-bot-token", slacktest.BotToken, "--slack-app-token", slacktest.AppToken,
		"--slack-api-url", fake.APIURL())
	if code != 1 || !strings.Contains(stderr, "slack: the bot token lacks the scope(s) reactions:write") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
