// Package senderauth decides whether a mail really comes from the domain in its From
// field: pass, fail or none, with the method that decided. It knows nothing of cases;
// the mail processor applies the policy.
//
// Two sources of evidence are used, in order. First the receiving server's
// Authentication-Results field (RFC 8601), but only the topmost one whose
// authserv-id the operator trusts: every field below it, and every field with another
// id, may have been written by the sender. Then, when that field settles nothing, the
// message's own DKIM signatures (RFC 6376) checked against DNS, aligned with the From
// domain and weighed by the domain's DMARC policy (RFC 7489).
package senderauth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
)

// Result is the verdict on a sender.
type Result string

// The verdicts.
const (
	// Pass: DMARC passes, by a trusted header or an aligned DKIM signature of our own checking.
	Pass Result = "pass"
	// Fail: a trusted header says dmarc=fail, or the From domain's DMARC policy is
	// quarantine or reject and nothing aligned passes.
	Fail Result = "fail"
	// None: no evidence either way (no trusted header, no aligned signature, no
	// enforcing policy, or DNS did not answer).
	None Result = "none"
)

// Verdict is the result with what decided it.
type Verdict struct {
	Result Result `json:"result"`
	// Method names the evidence: "dmarc", "dkim" or "spf" from the trusted header of
	// an authserv-id ("mx.google.com dmarc"), "dkim" for a signature checked here,
	// "dmarc policy" for a fail by the domain's published policy; "" for none.
	Method string `json:"method"`
	// Domain is the From domain the verdict is about.
	Domain string `json:"domain"`
}

// Resolver looks up DNS TXT records. A *net.Resolver is one. An error for a name
// that does not exist must be a *net.DNSError with IsNotFound, and a timeout one with
// IsTimeout, as the standard resolver returns them.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Options configure a Verifier.
type Options struct {
	// TrustedIDs are the authserv-ids whose Authentication-Results are believed, as
	// the receiving server writes them (mx.google.com). MicrosoftID among them also
	// trusts the id-less field Microsoft 365 writes, when it is the topmost one.
	TrustedIDs []string
	// Resolver answers the DKIM key and DMARC lookups.
	Resolver Resolver
	// Timeout bounds all DNS work for one message [5 s]; past it the verdict is none.
	Timeout time.Duration
	// MaxHeaderBytes bounds the header read [64 KiB]; a longer one gets none.
	MaxHeaderBytes int64
	Logger         *slog.Logger
}

// MicrosoftID is the pseudo authserv-id that stands for Microsoft 365 (Exchange
// Online), whose Authentication-Results field carries no authserv-id at all.
const MicrosoftID = "protection.outlook.com"

// Verifier computes verdicts. It is safe for concurrent use.
type Verifier struct {
	opt     Options
	trusted map[string]bool
	log     *slog.Logger
}

// New returns a Verifier.
func New(opt Options) *Verifier {
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	if opt.MaxHeaderBytes <= 0 {
		opt.MaxHeaderBytes = 64 << 10
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{opt: opt, trusted: map[string]bool{}, log: opt.Logger}
	for _, id := range opt.TrustedIDs {
		if id = strings.ToLower(strings.TrimSpace(id)); id != "" {
			v.trusted[id] = true
		}
	}
	return v
}

// errHeader reports a header that cannot be read for a verdict.
var errHeader = errors.New("sender verdict: unreadable header")

// Verify reads the message in raw from its start and returns its verdict. It never
// fails: whatever cannot be checked (a broken header, a DNS timeout) is none, and a
// DNS failure is logged. raw is left at an unspecified offset.
func (v *Verifier) Verify(ctx context.Context, raw io.ReadSeeker) Verdict {
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return Verdict{Result: None}
	}
	h, err := v.readHeader(raw)
	if err != nil {
		return Verdict{Result: None}
	}
	domain := fromDomain(h)
	if domain == "" {
		return Verdict{Result: None}
	}
	if vd, ok := v.fromHeader(h, domain); ok {
		return vd
	}
	if v.opt.Resolver == nil {
		return Verdict{Result: None, Domain: domain}
	}
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return Verdict{Result: None, Domain: domain}
	}
	ctx, cancel := context.WithTimeout(ctx, v.opt.Timeout)
	defer cancel()
	vd, err := v.own(ctx, raw, domain)
	if err != nil {
		v.log.WarnContext(ctx, "sender verdict: DNS did not answer; verdict none", "domain", domain, slog.Any("error", err))
		return Verdict{Result: None, Domain: domain}
	}
	return vd
}

// readHeader reads the header fields, in order, unfolded.
func (v *Verifier) readHeader(r io.Reader) (textproto.MIMEHeader, error) {
	lr := &io.LimitedReader{R: r, N: v.opt.MaxHeaderBytes + 1}
	h, err := textproto.NewReader(bufio.NewReader(lr)).ReadMIMEHeader()
	if err != nil || lr.N <= 0 {
		return nil, fmt.Errorf("%w: %v", errHeader, err)
	}
	return h, nil
}

// fromDomain is the domain of the single From address, lower-cased; "" when there is
// not exactly one (RFC 7489 section 6.6.1 leaves several authors unevaluated).
func fromDomain(h textproto.MIMEHeader) string {
	froms := h.Values("From")
	if len(froms) != 1 {
		return ""
	}
	addrs, err := (&mail.AddressParser{}).ParseList(froms[0])
	if err != nil || len(addrs) != 1 {
		return ""
	}
	at := strings.LastIndexByte(addrs[0].Address, '@')
	if at <= 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addrs[0].Address[at+1:], "."))
}
