package oauth

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestAwaitCodeAnswersTheBrowser checks that the page the provider sends the browser
// back to is answered in full before the listener closes, whatever the outcome: the
// person reads on it whether to look at the terminal.
func TestAwaitCodeAnswersTheBrowser(t *testing.T) {
	for _, tt := range []struct {
		name   string
		query  string
		status int
		page   string
	}{
		{"signed in", "code=c1", http.StatusOK, "signed in"},
		{"declined", "error=access_denied", http.StatusBadRequest, "did not succeed"},
		{"no code", "", http.StatusBadRequest, "did not succeed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Many rounds, as the listener's end races the response.
			for range 300 {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				type got struct {
					status int
					page   string
					err    error
				}
				browser := make(chan got, 1)
				go func() {
					resp, err := http.Get("http://" + ln.Addr().String() + "/?state=s1&" + tt.query)
					if err != nil {
						browser <- got{err: err}
						return
					}
					defer resp.Body.Close()
					b, err := io.ReadAll(resp.Body)
					browser <- got{resp.StatusCode, string(b), err}
				}()
				if _, err := awaitCode(context.Background(), ln, "s1"); (err == nil) != (tt.status == http.StatusOK) {
					t.Fatalf("awaitCode: %v", err)
				}
				ln.Close()
				g := <-browser
				if g.err != nil || g.status != tt.status || !strings.Contains(g.page, tt.page) {
					t.Fatalf("the browser got %d %q, %v; want %d with %q", g.status, g.page, g.err, tt.status, tt.page)
				}
			}
		})
	}
}
