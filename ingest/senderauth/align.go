package senderauth

import (
	"strings"

	"golang.org/x/net/publicsuffix"
)

// aligned reports whether domain d (a DKIM d= or an SPF domain) is aligned with the
// From domain (RFC 7489 section 3.1): the same domain in strict mode; the same
// organisational domain in relaxed mode, found with the public suffix list
// (example.co.uk, not co.uk).
func aligned(from, d string, strict bool) bool {
	from, d = strings.ToLower(strings.TrimSuffix(from, ".")), strings.ToLower(strings.TrimSuffix(d, "."))
	if from == d {
		return true
	}
	if strict {
		return false
	}
	return orgDomain(from) == orgDomain(d)
}

// orgDomain is the organisational domain: the public suffix plus one label.
func orgDomain(d string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}
