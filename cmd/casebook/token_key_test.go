package main

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/casebookhq/casebook/casebook"
)

// TestTokenKeyInDatabase: without --token-key the reply-token key is generated once
// and kept in the database, the reply address defaults to --mail-from's, and after
// `casebook token-key rotate` tokens signed with the old key still verify; a key
// given on the command line wins.
func TestTokenKeyInDatabase(t *testing.T) {
	c := newCLI(t)
	c.json("migrate")
	ctx := t.Context()
	newApp := func(args ...string) *app {
		a := &app{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}
		a.cfg.DatabaseURL, a.cfg.ReplyTokenTTL = c.url, casebook.DefaultTokenTTL
		a.cfg.Outbox.From = "Acme Support <support@acme.example>"
		if len(args) > 0 {
			a.cfg.TokenKey = args[0]
		}
		t.Cleanup(func() {
			if a.st != nil {
				a.st.Close()
			}
		})
		return a
	}
	signer := func(a *app) *casebook.TokenSigner {
		t.Helper()
		s, err := a.tokenSigner(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := newApp().replyAddress(); got != "support@acme.example" {
		t.Errorf("reply address %q, want --mail-from's", got)
	}
	if _, err := newApp().tokenSigner(ctx, false); !errors.Is(err, casebook.ErrNotFound) {
		t.Fatalf("a key before any was made: %v", err)
	}
	tok := signer(newApp()).Sign(casebook.ReplyToken{CaseNumber: 1, UserID: 2})
	if signer(newApp()).Sign(casebook.ReplyToken{CaseNumber: 1, UserID: 2}) != tok {
		t.Errorf("a second start made another key")
	}
	if out := c.json("token-key", "rotate"); out["retired_keys"] != 1.0 {
		t.Errorf("rotate: %v", out)
	}
	rotated := signer(newApp())
	if rotated.Sign(casebook.ReplyToken{CaseNumber: 1, UserID: 2}) == tok {
		t.Errorf("rotate kept the signing key")
	}
	if r, err := rotated.Verify(tok); err != nil || r.CaseNumber != 1 {
		t.Errorf("a token of the old key after rotate: %+v, %v", r, err)
	}
	if _, err := signer(newApp(testTokenKey)).Verify(tok); !errors.Is(err, casebook.ErrBadToken) {
		t.Errorf("--token-key did not win over the database's key: %v", err)
	}
	if code, _, _ := c.run("token-key", "rotate", "--token-key", testTokenKey); code != 2 {
		t.Errorf("rotate with --token-key set: exit %d, want 2", code)
	}
}
