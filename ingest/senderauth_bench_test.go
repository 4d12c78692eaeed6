package ingest_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/casebookhq/casebook/ingest"
	"github.com/casebookhq/casebook/ingest/mail"
	"github.com/casebookhq/casebook/ingest/senderauth"
	"github.com/casebookhq/casebook/ingest/senderauth/dnstest"
)

// BenchmarkSenderVerdict is BenchmarkHandle three ways in one run: without a verdict,
// with the verdict read from a trusted Authentication-Results field, and with the
// verdict from the message's own DKIM signature checked against DNS (a loopback
// server). Signing happens with the timer stopped.
func BenchmarkSenderVerdict(b *testing.B) {
	dns := dnstest.Start(b)
	key := dns.NewKey(b, "acme.example", "s1")
	dns.SetTXT("_dmarc.acme.example", "v=DMARC1; p=reject")
	data := bytes.Repeat([]byte("casebook benchmark payload\n"), 100_000/27)
	for _, mode := range []string{"off", "header", "dkim"} {
		b.Run(mode, func(b *testing.B) {
			f := newFixture(b, mail.Limits{})
			opts := ingest.ProcessorOptions{ReplyAddress: replyAddress, Tokens: f.signer}
			if mode != "off" {
				opts.Verifier = senderauth.New(senderauth.Options{TrustedIDs: []string{trustedID}, Resolver: senderauth.NewResolver(dns.Addr)})
			}
			p := ingest.NewProcessor(f.svc, f.st, f.blobs, opts)
			tok := f.tokenAddress(b, f.c.Number, f.contact.ID)
			for i := range b.N {
				b.StopTimer()
				headers := []string{"From: alice@acme.example", "To: " + tok, "Subject: scan", fmt.Sprintf("Message-ID: <bench-%d@acme.example>", i)}
				if mode == "header" {
					headers = append([]string{passed("acme.example")}, headers...)
				}
				raw := msg{headers: headers, body: "here", files: []file{{"scan.pdf", "application/pdf", append(slices.Clip(data), fmt.Sprint(i)...)}}}.bytes()
				if mode == "dkim" {
					raw = key.Sign(b, raw)
				}
				b.StartTimer()
				rep, err := p.Handle(b.Context(), ingest.Location{Mailbox: "INBOX", UIDValidity: 1, UID: uint32(i + 1)}, bytes.NewReader(raw))
				if err != nil || rep.Disposition != ingest.Processed {
					b.Fatalf("%+v, %v", rep, err)
				}
				if want := map[string]senderauth.Result{"off": senderauth.None, "header": senderauth.Pass, "dkim": senderauth.Pass}[mode]; rep.SenderAuth.Result != want {
					b.Fatalf("verdict %+v, want %s", rep.SenderAuth, want)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
