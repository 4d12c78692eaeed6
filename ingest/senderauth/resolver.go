package senderauth

import (
	"context"
	"net"
)

// NewResolver returns a resolver that asks the DNS server at hostPort (127.0.0.1:53,
// a site's local resolver) instead of the system's; "" is the system resolver.
func NewResolver(hostPort string) *net.Resolver {
	if hostPort == "" {
		return net.DefaultResolver
	}
	var d net.Dialer
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, hostPort)
		},
	}
}
