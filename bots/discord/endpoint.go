package discord

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Hosts the bot talks to. discordgo builds its REST URLs on discord.com; the gateway
// URL comes from GET /gateway (gateway.discord.gg today); attachments live on the CDN.
const (
	apiHost   = "discord.com"
	cdnHost   = "cdn.discordapp.com"
	mediaHost = "media.discordapp.net"
)

// isCDNHost reports whether host serves Discord attachments. Only these hosts are
// fetched: an attachment URL is data from the network, and following it anywhere else
// would let a message make the bot request arbitrary (internal) addresses.
func isCDNHost(host string) bool { return host == cdnHost || host == mediaHost }

// redirect sends discord.com, the gateway and the CDN hosts to one base URL (a fake
// Discord in tests, a proxy in staging). It is set per session, unlike discordgo's
// package-level Endpoint variables, which every session in the process shares.
type redirect struct {
	base *url.URL
	next http.RoundTripper
}

func parseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("discord api url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("discord api url %q: want scheme://host[:port] with no path", raw)
	}
	return u, nil
}

func (r redirect) rewrites(host string) bool {
	return host == apiHost || isCDNHost(host) || strings.HasSuffix(host, ".discord.gg")
}

// RoundTrip sends requests for Discord's hosts to the base URL. The Host header keeps
// the original name, so the far side still knows the API from the CDN.
func (r redirect) RoundTrip(req *http.Request) (*http.Response, error) {
	if !r.rewrites(req.URL.Hostname()) {
		return r.next.RoundTrip(req)
	}
	out := req.Clone(req.Context())
	if out.Host == "" {
		out.Host = req.URL.Host
	}
	out.URL.Scheme = r.base.Scheme
	out.URL.Host = r.base.Host
	return r.next.RoundTrip(out)
}

// dialer returns a websocket dialer that reaches any gateway host at the base URL, over
// TLS only when the base is https.
func (r redirect) dialer() *websocket.Dialer {
	var nd net.Dialer
	addr := r.base.Host
	if r.base.Port() == "" {
		addr = net.JoinHostPort(r.base.Hostname(), map[string]string{"http": "80", "https": "443"}[r.base.Scheme])
	}
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return nd.DialContext(ctx, network, addr)
	}
	d := &websocket.Dialer{HandshakeTimeout: 30 * time.Second, NetDialContext: dial, NetDialTLSContext: dial}
	if r.base.Scheme == "https" {
		d.NetDialTLSContext = func(ctx context.Context, network, a string) (net.Conn, error) {
			td := tls.Dialer{NetDialer: &nd, Config: &tls.Config{ServerName: r.base.Hostname()}}
			return td.DialContext(ctx, network, addr)
		}
	}
	return d
}
