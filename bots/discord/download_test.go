package discord

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestCDNURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://cdn.discordapp.com/attachments/1/2/scan.pdf?ex=1&is=2&hm=3&", true},
		{"https://media.discordapp.net/attachments/1/2/scan.pdf?ex=1", true},
		{"http://cdn.discordapp.com/attachments/1/2/scan.pdf", false},
		{"https://cdn.discordapp.com:8443/attachments/1/2/scan.pdf", false},
		{"https://user:pw@cdn.discordapp.com/attachments/1/2/scan.pdf", false},
		{"https://cdn.discordapp.com.attacker.example/attachments/1/2/scan.pdf", false},
		{"https://evilcdn.discordapp.com/attachments/1/2/scan.pdf", false},
		{"https://discord.com/api/v9/gateway", false},
		{"https://127.0.0.1/attachments/1/2/scan.pdf", false},
		{"//cdn.discordapp.com/attachments/1/2/scan.pdf", false},
		{"https://CDN.DISCORDAPP.COM/attachments/1/2/scan.pdf", false},
		{"", false},
		{"https://cdn.discordapp.com\x00.example/", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := cdnURL(tt.url)
			if (err == nil) != tt.ok {
				t.Errorf("cdnURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
			}
			if err != nil && !errors.Is(err, errNotCDN) {
				t.Errorf("error %v does not wrap errNotCDN", err)
			}
		})
	}
}

// FuzzCDNURL checks that whatever cdnURL accepts is an https URL on a CDN host, with
// no port and no credentials, and that it parses to the same host again.
func FuzzCDNURL(f *testing.F) {
	f.Add("https://cdn.discordapp.com/attachments/1/2/a.pdf?ex=1&is=2&hm=3&")
	f.Add("https://media.discordapp.net/attachments/1/2/a.pdf")
	f.Add("https://cdn.discordapp.com.example/")
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := cdnURL(raw)
		if err != nil {
			return
		}
		if u.Scheme != "https" || u.User != nil || u.Port() != "" || !isCDNHost(u.Hostname()) {
			t.Fatalf("cdnURL(%q) accepted %s", raw, u)
		}
		again, err := url.Parse(u.String())
		if err != nil || again.Host != u.Host {
			t.Fatalf("cdnURL(%q): %s reparses to host %q (%v)", raw, u, again.Host, err)
		}
	})
}

func TestExactReader(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		declared int64
		wantErr  error
	}{
		{"exact", "hello", 5, nil},
		{"empty", "", 0, nil},
		{"short", "hell", 5, errSizeMismatch},
		{"long", "hello!", 5, errSizeMismatch},
		{"empty but declared", "", 3, errSizeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &exactReader{r: io.NopCloser(&oneByteReader{strings.NewReader(tt.body)}), left: tt.declared}
			got, err := io.ReadAll(r)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("read: %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && string(got) != tt.body {
				t.Errorf("read %q, want %q", got, tt.body)
			}
		})
	}
}

// oneByteReader returns a byte at a time, as a slow network does.
type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A CDN answer that redirects off the CDN is not followed, and the signed URL stays out
// of the error.
func TestDownloadRedirectOffCDN(t *testing.T) {
	c := &http.Client{CheckRedirect: cdnRedirectsOnly, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host != cdnHost {
			t.Errorf("request to %s", r.URL.Host)
		}
		return &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {"https://attacker.example/x"}}, Body: http.NoBody, Request: r}, nil
	})}
	_, err := download(t.Context(), c, "https://cdn.discordapp.com/attachments/1/2/a.pdf?ex=1&is=2&hm=signature", 10, 100)
	if !errors.Is(err, errNotCDN) || strings.Contains(err.Error(), "signature") {
		t.Errorf("download = %v, want errNotCDN without the signature", err)
	}
}
