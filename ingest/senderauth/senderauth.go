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
	// Timeout bounds each DNS lookup [5 s]; past it the verdict is none.
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
	c := v.Begin(ctx, raw)
	if c.NeedsMessage() {
		_, err := raw.Seek(0, io.SeekStart)
		if err == nil {
			_, err = io.Copy(c, raw)
		}
		c.Close(err)
	}
	return c.Verdict()
}

// Begin starts the verdict of the message in raw, reading its header. When the header
// decides (a trusted Authentication-Results, no single From domain) the Check holds
// the verdict already. Otherwise the verdict needs the message's own DKIM signatures,
// and with them its whole body: then NeedsMessage is true, and the caller hands the
// Check every byte of the message from its start through Write and then calls Close,
// so that one read of the message serves the verdict and whatever else reads it.
// raw is left at an unspecified offset.
func (v *Verifier) Begin(ctx context.Context, raw io.ReadSeeker) *Check {
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return Decided(Verdict{Result: None})
	}
	h, err := v.readHeader(raw)
	if err != nil {
		return Decided(Verdict{Result: None})
	}
	domain := fromDomain(h)
	if domain == "" {
		return Decided(Verdict{Result: None})
	}
	if vd, ok := v.fromHeader(h, domain); ok {
		return Decided(vd)
	}
	if v.opt.Resolver == nil {
		return Decided(Verdict{Result: None, Domain: domain})
	}
	pr, pw := io.Pipe()
	c := &Check{w: pw, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		vd, err := v.own(ctx, pr, domain)
		// The DKIM reader may stop early (a header it cannot take); the caller's
		// read must not block on it.
		io.Copy(io.Discard, pr)
		if err != nil {
			v.log.WarnContext(ctx, "sender verdict: DNS did not answer; verdict none", "domain", domain, slog.Any("error", err))
			vd = Verdict{Result: None, Domain: domain}
		}
		c.verdict = vd
	}()
	return c
}

// Decided is a Check whose verdict is v.
func Decided(v Verdict) *Check { return &Check{verdict: v} }

// Check is a verdict being worked out (Verifier.Begin).
type Check struct {
	verdict Verdict
	// w takes the message when the verdict needs it; done closes once verdict is set.
	w    *io.PipeWriter
	done chan struct{}
}

// NeedsMessage reports whether the Check must be handed the whole message.
func (c *Check) NeedsMessage() bool { return c.w != nil }

// Write hands the Check the next bytes of the message. It never fails, so that a
// verdict that cannot be reached never stops the read it rides on.
func (c *Check) Write(p []byte) (int, error) {
	if c.w != nil {
		c.w.Write(p)
	}
	return len(p), nil
}

// Close ends the message; err, when not nil, is why the read stopped short. Calls
// after the first do nothing.
func (c *Check) Close(err error) {
	if c.w != nil {
		c.w.CloseWithError(err)
	}
}

// Verdict waits for the verdict: when the Check needs the message, until Close.
func (c *Check) Verdict() Verdict {
	if c.done != nil {
		<-c.done
	}
	return c.verdict
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
