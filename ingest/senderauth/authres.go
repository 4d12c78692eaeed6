package senderauth

import (
	"net/textproto"
	"strings"
)

// fromHeader decides by the topmost Authentication-Results field with a trusted
// authserv-id. ok is false when there is none, or it settles nothing (no dmarc result
// and no aligned dkim or spf pass): the message's own signatures decide then.
func (v *Verifier) fromHeader(h textproto.MIMEHeader, domain string) (Verdict, bool) {
	for i, field := range h.Values("Authentication-Results") {
		id, results := parseAuthResults(field)
		if id == "" {
			// Exchange Online writes no authserv-id and puts its field on top; an
			// id-less field further down is the sender's.
			if i != 0 {
				continue
			}
			id = MicrosoftID
		}
		if !v.isTrusted(id) {
			continue
		}
		return decide(id, results, domain)
	}
	return Verdict{}, false
}

// isTrusted reports whether the operator named id, or a "*.parent" it falls under
// (Fastmail stamps mx1 to mx6.messagingengine.com, whichever took the mail).
func (v *Verifier) isTrusted(id string) bool {
	if v.trusted[id] {
		return true
	}
	for i := strings.IndexByte(id, '.'); i >= 0; i = strings.IndexByte(id, '.') {
		id = id[i+1:]
		if v.trusted["*."+id] {
			return true
		}
	}
	return false
}

// decide reads one trusted field's results for the From domain.
func decide(id string, results []authResult, domain string) (Verdict, bool) {
	for _, r := range results {
		if r.method != "dmarc" {
			continue
		}
		if from := r.props["header.from"]; from != "" && !strings.EqualFold(strings.TrimSuffix(from, "."), domain) {
			continue // about another author: not this From
		}
		switch r.value {
		// Microsoft writes bestguesspass when the domain publishes no DMARC record
		// but aligned SPF or DKIM passed: the same evidence as a pass.
		case "pass", "bestguesspass":
			return Verdict{Result: Pass, Method: id + " dmarc", Domain: domain}, true
		case "fail":
			return Verdict{Result: Fail, Method: id + " dmarc", Domain: domain}, true
		}
	}
	// No DMARC evaluation (a Dovecot or Postfix setup with DKIM and SPF checks only):
	// an aligned pass of either is what DMARC would have found.
	for _, r := range results {
		if r.value != "pass" {
			continue
		}
		var d string
		switch r.method {
		case "dkim":
			d = r.props["header.d"]
			if d == "" {
				d = domainOf(r.props["header.i"])
			}
		case "spf":
			d = domainOf(r.props["smtp.mailfrom"])
		default:
			continue
		}
		if d != "" && aligned(domain, d, false) {
			return Verdict{Result: Pass, Method: id + " " + r.method, Domain: domain}, true
		}
	}
	return Verdict{}, false
}

// authResult is one resinfo of an Authentication-Results field: method=value and
// its ptype.property=value pairs, lower-cased.
type authResult struct {
	method, value string
	props         map[string]string
}

// parseAuthResults reads a field value (RFC 8601 section 2.2) into its authserv-id
// and results. Comments are dropped first; they hold free text with "=" and ";" in
// it (Gmail's "(p=REJECT sp=REJECT dis=NONE)"). A field whose first element is
// already a result (Microsoft's) has the id "".
func parseAuthResults(field string) (string, []authResult) {
	parts := strings.Split(stripComments(field), ";")
	id := ""
	first := strings.Fields(parts[0])
	if len(first) > 0 && !strings.Contains(first[0], "=") {
		id = strings.ToLower(first[0])
		parts = parts[1:]
	}
	var out []authResult
	for _, p := range parts {
		fs := strings.Fields(p)
		if len(fs) == 0 {
			continue
		}
		method, value, ok := strings.Cut(fs[0], "=")
		if !ok {
			continue // "none", or noise
		}
		r := authResult{method: strings.ToLower(method), value: strings.ToLower(strings.Trim(value, `"`)), props: map[string]string{}}
		for _, kv := range fs[1:] {
			if k, v, ok := strings.Cut(kv, "="); ok {
				r.props[strings.ToLower(k)] = strings.ToLower(strings.Trim(v, `"`))
			}
		}
		out = append(out, r)
	}
	return id, out
}

// stripComments removes RFC 5322 comments, which nest, outside quoted strings.
func stripComments(s string) string {
	var b strings.Builder
	depth, quoted, escaped := 0, false, false
	for _, c := range s {
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case quoted && c == '"':
			quoted = false
		case depth == 0 && c == '"':
			quoted = true
		case !quoted && c == '(':
			depth++
			continue
		case !quoted && c == ')' && depth > 0:
			depth--
			continue
		}
		if depth == 0 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// domainOf is the domain of an address or of "@domain"; a bare domain stays as it is.
func domainOf(s string) string {
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		return s[at+1:]
	}
	return s
}
