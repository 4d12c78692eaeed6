package discord

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type recorder struct{ got []string }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.got = append(r.got, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path+" host="+req.Host)
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
}

func TestRedirect(t *testing.T) {
	base, err := parseBase("http://127.0.0.1:9999")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	c := &http.Client{Transport: redirect{base: base, next: rec}}
	for _, u := range []string{
		"https://discord.com/api/v9/gateway",
		"https://cdn.discordapp.com/attachments/1/2/a.pdf",
		"https://media.discordapp.net/attachments/1/2/a.pdf",
		"https://gateway.discord.gg/",
		"https://example.com/other",
	} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want := []string{
		"http://127.0.0.1:9999/api/v9/gateway host=discord.com",
		"http://127.0.0.1:9999/attachments/1/2/a.pdf host=cdn.discordapp.com",
		"http://127.0.0.1:9999/attachments/1/2/a.pdf host=media.discordapp.net",
		"http://127.0.0.1:9999/ host=gateway.discord.gg",
		"https://example.com/other host=example.com",
	}
	if diff := cmp.Diff(want, rec.got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestParseBase(t *testing.T) {
	for _, tt := range []struct {
		raw string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true},
		{"https://discord-proxy.staging.example", true},
		{"https://discord-proxy.staging.example/", true},
		{"ftp://127.0.0.1", false},
		{"127.0.0.1:8080", false},
		{"http://127.0.0.1:8080/api", false},
	} {
		_, err := parseBase(tt.raw)
		if (err == nil) != tt.ok {
			t.Errorf("parseBase(%q) = %v, want ok=%v", tt.raw, err, tt.ok)
		}
	}
}
