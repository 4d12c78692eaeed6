package senderauth

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
)

// maxSignatures bounds the DKIM signatures checked per message: each costs a DNS
// lookup and a pass over the body, and a sender could add hundreds.
const maxSignatures = 5

// errDNS reports DNS that did not answer in time: the verdict is none, never fail.
var errDNS = errors.New("dns lookup failed")

// own checks the message's DKIM signatures and the From domain's DMARC policy.
func (v *Verifier) own(ctx context.Context, raw io.Reader, domain string) (Verdict, error) {
	// Each lookup has the time limit of its own: the body comes as the caller reads the
	// message, which may take longer than any answer should.
	lookup := func(name string) ([]string, error) {
		ctx, cancel := context.WithTimeout(ctx, v.opt.Timeout)
		defer cancel()
		return v.opt.Resolver.LookupTXT(ctx, name)
	}
	rec, sub, err := v.policy(lookup, domain)
	if err != nil {
		return Verdict{}, err
	}
	strict := rec != nil && rec.DKIMAlignment == dmarc.AlignmentStrict
	verifs, err := dkim.VerifyWithOptions(raw, &dkim.VerifyOptions{LookupTXT: lookup, MaxVerifications: maxSignatures})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		// A header the DKIM reader cannot take proves nothing either way.
		verifs = nil
	}
	tempFail := false
	for _, vf := range verifs {
		switch {
		case vf.Err == nil && aligned(domain, vf.Domain, strict):
			return Verdict{Result: Pass, Method: "dkim", Domain: domain}, nil
		case vf.Err != nil && dkim.IsTempFail(vf.Err):
			tempFail = true
			err = vf.Err
		}
	}
	if tempFail {
		// The key may have been the one that passes.
		return Verdict{}, fmt.Errorf("%w: dkim key: %w", errDNS, err)
	}
	if rec != nil {
		p := rec.Policy
		if sub && rec.SubdomainPolicy != "" {
			p = rec.SubdomainPolicy
		}
		if p == dmarc.PolicyQuarantine || p == dmarc.PolicyReject {
			return Verdict{Result: Fail, Method: "dmarc policy", Domain: domain}, nil
		}
	}
	return Verdict{Result: None, Domain: domain}, nil
}

// policy finds the DMARC record of domain, or else of its organisational domain
// (RFC 7489 section 6.6.3); sub says the latter. No record is (nil, false, nil).
func (v *Verifier) policy(lookup func(string) ([]string, error), domain string) (*dmarc.Record, bool, error) {
	opts := &dmarc.LookupOptions{LookupTXT: lookup}
	rec, err := dmarc.LookupWithOptions(domain, opts)
	org := orgDomain(domain)
	if errors.Is(err, dmarc.ErrNoPolicy) && org != domain {
		rec, err = dmarc.LookupWithOptions(org, opts)
		if err == nil {
			return rec, true, nil
		}
	}
	switch {
	case err == nil:
		return rec, false, nil
	case errors.Is(err, dmarc.ErrNoPolicy):
		return nil, false, nil
	case dmarc.IsTempFail(err):
		return nil, false, fmt.Errorf("%w: dmarc record: %w", errDNS, err)
	}
	// A broken record or a refused query: no policy to enforce.
	v.log.Debug("sender verdict: unusable DMARC record", "domain", domain, "error", err.Error())
	return nil, false, nil
}
