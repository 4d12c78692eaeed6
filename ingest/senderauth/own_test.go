package senderauth_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/ingest/senderauth"
	"github.com/casebookhq/casebook/ingest/senderauth/dnstest"
)

const plainMail = "From: Bea Billing <billing@acme-clinic.example>\r\n" +
	"To: support@casebook.example\r\n" +
	"Subject: Re: [CASE-000001] Claim batch\r\n" +
	"Date: Tue, 3 Mar 2026 18:11:58 +0100\r\n" +
	"Message-ID: <own-1@acme-clinic.example>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"The corrected batch is attached.\r\n"

// TestOwnVerdicts checks DKIM and DMARC against a DNS server the test runs.
func TestOwnVerdicts(t *testing.T) {
	dns := dnstest.Start(t)
	acme := dns.NewKey(t, "acme-clinic.example", "s1")
	evil := dns.NewKey(t, "evil.example", "s1")
	dns.SetTXT("_dmarc.acme-clinic.example", "v=DMARC1; p=reject; rua=mailto:dmarc@acme-clinic.example")
	dns.SetTXT("_dmarc.lax.example", "v=DMARC1; p=none")
	lax := dns.NewKey(t, "lax.example", "s1")

	changed := func(b []byte) []byte { return bytes.Replace(b, []byte("corrected"), []byte("fraudulent"), 1) }
	from := func(addr string) []byte {
		return []byte(strings.Replace(plainMail, "billing@acme-clinic.example", addr, 1))
	}
	tests := []struct {
		name string
		raw  []byte
		want senderauth.Verdict
	}{
		{"aligned signature", acme.Sign(t, []byte(plainMail)), senderauth.Verdict{Result: senderauth.Pass, Method: "dkim", Domain: "acme-clinic.example"}},
		{"subdomain author, org signature", acme.Sign(t, from("billing@mail.acme-clinic.example")), senderauth.Verdict{Result: senderauth.Pass, Method: "dkim", Domain: "mail.acme-clinic.example"}},
		{"unsigned, policy reject", []byte(plainMail), senderauth.Verdict{Result: senderauth.Fail, Method: "dmarc policy", Domain: "acme-clinic.example"}},
		{"signed by another domain", evil.Sign(t, []byte(plainMail)), senderauth.Verdict{Result: senderauth.Fail, Method: "dmarc policy", Domain: "acme-clinic.example"}},
		{"body changed after signing", changed(acme.Sign(t, []byte(plainMail))), senderauth.Verdict{Result: senderauth.Fail, Method: "dmarc policy", Domain: "acme-clinic.example"}},
		{"body changed, policy none", changed(lax.Sign(t, from("a@lax.example"))), senderauth.Verdict{Result: senderauth.None, Domain: "lax.example"}},
		{"no policy, unsigned", from("a@nopolicy.example"), senderauth.Verdict{Result: senderauth.None, Domain: "nopolicy.example"}},
		{"two authors", from("a@acme-clinic.example, b@acme-clinic.example"), senderauth.Verdict{Result: senderauth.None}},
	}
	v := senderauth.New(senderauth.Options{Resolver: senderauth.NewResolver(dns.Addr)})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := v.Verify(t.Context(), bytes.NewReader(tt.raw))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDNSTimeout: a key server that never answers is none, logged, and bounded.
func TestDNSTimeout(t *testing.T) {
	dns := dnstest.Start(t)
	key := dns.NewKey(t, "acme-clinic.example", "s1")
	dns.SetTXT("_dmarc.acme-clinic.example", "v=DMARC1; p=reject")
	dns.Stall("s1._domainkey.acme-clinic.example")
	var logs bytes.Buffer
	v := senderauth.New(senderauth.Options{
		Resolver: senderauth.NewResolver(dns.Addr),
		Timeout:  300 * time.Millisecond,
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	start := time.Now()
	got := v.Verify(t.Context(), bytes.NewReader(key.Sign(t, []byte(plainMail))))
	if want := (senderauth.Verdict{Result: senderauth.None, Domain: "acme-clinic.example"}); got != want {
		t.Errorf("verdict = %+v, want %+v", got, want)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v despite a 300ms timeout", d)
	}
	if !strings.Contains(logs.String(), "DNS did not answer") {
		t.Errorf("timeout not logged: %q", logs.String())
	}
}

// TestHeaderBeforeDNS: a trusted header that settles the verdict asks no DNS, and
// one that settles nothing leaves it to the signatures.
func TestHeaderBeforeDNS(t *testing.T) {
	dns := dnstest.Start(t)
	key := dns.NewKey(t, "acme-clinic.example", "s1")
	dns.SetTXT("_dmarc.acme-clinic.example", "v=DMARC1; p=reject")
	v := senderauth.New(senderauth.Options{TrustedIDs: []string{"mx.support.example"}, Resolver: senderauth.NewResolver(dns.Addr)})
	stamped := "Authentication-Results: mx.support.example; spf=none smtp.mailfrom=acme-clinic.example\r\n" + plainMail
	got := v.Verify(t.Context(), bytes.NewReader(key.Sign(t, []byte(stamped))))
	if got.Result != senderauth.Pass || got.Method != "dkim" {
		t.Errorf("unsettled header: verdict %+v, want a dkim pass", got)
	}
	dns.Stall("s1._domainkey.acme-clinic.example")
	dns.Stall("_dmarc.acme-clinic.example")
	stamped = "Authentication-Results: mx.support.example; dmarc=pass header.from=acme-clinic.example\r\n" + plainMail
	start := time.Now()
	got = v.Verify(t.Context(), bytes.NewReader(key.Sign(t, []byte(stamped))))
	if got.Result != senderauth.Pass || got.Method != "mx.support.example dmarc" || time.Since(start) > time.Second {
		t.Errorf("settled header: verdict %+v after %v", got, time.Since(start))
	}
}

// BenchmarkVerify is the verdict alone, per message with a 100 KB body: the trusted
// header path and the own-DKIM path (one RSA-2048 signature, DNS on loopback).
func BenchmarkVerify(b *testing.B) {
	dns := dnstest.Start(b)
	key := dns.NewKey(b, "acme-clinic.example", "s1")
	dns.SetTXT("_dmarc.acme-clinic.example", "v=DMARC1; p=reject")
	v := senderauth.New(senderauth.Options{TrustedIDs: []string{"mx.support.example"}, Resolver: senderauth.NewResolver(dns.Addr)})
	body := strings.Repeat("casebook benchmark payload\r\n", 100_000/28)
	for _, tt := range []struct {
		name string
		raw  []byte
	}{
		{"header", []byte("Authentication-Results: mx.support.example; dmarc=pass header.from=acme-clinic.example\r\n" + plainMail + body)},
		{"dkim", key.Sign(b, []byte(plainMail+body))},
	} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				if got := v.Verify(b.Context(), bytes.NewReader(tt.raw)); got.Result != senderauth.Pass {
					b.Fatalf("verdict %+v", got)
				}
			}
		})
	}
}
