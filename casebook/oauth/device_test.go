package oauth_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook/oauth"
	"github.com/casebookhq/casebook/casebook/oauth/oauthtest"
)

func TestDeviceLogin(t *testing.T) {
	tests := []struct {
		name    string
		style   oauthtest.Style
		answers []string
		err     string
		// minGap is the least time between two polls after a slow_down.
		minGap time.Duration
	}{
		{name: "pending then granted (Google)", style: oauthtest.Google, answers: []string{"authorization_pending", "authorization_pending"}},
		{name: "slow down (Microsoft)", style: oauthtest.Microsoft, answers: []string{"authorization_pending", "slow_down"}, minGap: 5 * time.Second},
		{name: "access denied (Google)", style: oauthtest.Google, answers: []string{"authorization_pending", "access_denied"}, err: "access was denied"},
		{name: "declined (Microsoft)", style: oauthtest.Microsoft, answers: []string{"authorization_declined"}, err: "access was denied"},
		{name: "code expired (Google)", style: oauthtest.Google, answers: []string{"expired_token"}, err: "the code expired before it was entered: run casebook oauth login again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := oauthtest.Start(t, oauthtest.Options{Style: tt.style, ClientID: "c", ClientSecret: "s", Scope: "https://mail.google.com/"})
			fake.Device(tt.answers...)
			acct := account(t, url.Values{"oauth": {"generic"}, "client_id": {"c"}, "client_secret_file": {writeFile(t, "secret", "s")},
				"refresh_token_file": {"/unused"}, "token_url": {fake.TokenURL}, "device_url": {fake.DeviceURL}})
			var shown oauth.DeviceCode
			rt, granted, err := oauth.Login(t.Context(), acct, oauth.Options{}, func(c oauth.DeviceCode) error { shown = c; return nil })
			if shown.UserCode != "FAKE-CODE" || !strings.HasPrefix(shown.VerificationURI, "https://") {
				t.Errorf("shown %+v", shown)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(rt, "rt-") || len(granted) != 1 {
				t.Errorf("refresh token %q, granted %v", rt, granted)
			}
			polls := fake.Polls()
			if len(polls) != len(tt.answers)+1 {
				t.Errorf("%d polls, want %d", len(polls), len(tt.answers)+1)
			}
			if tt.minGap > 0 {
				if gap := polls[len(polls)-1].Sub(polls[len(polls)-2]); gap < tt.minGap {
					t.Errorf("polled again %s after slow_down, want at least %s", gap, tt.minGap)
				}
			}
		})
	}
}
