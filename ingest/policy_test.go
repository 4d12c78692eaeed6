package ingest_test

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/ingest"
	"github.com/casebookhq/casebook/ingest/mail"
	"github.com/casebookhq/casebook/ingest/senderauth"
	"github.com/casebookhq/casebook/ingest/senderauth/dnstest"
)

// TestSenderPolicy is each bad input of sender authentication, and the good mail
// beside it, through the whole processor with a DNS server of the test's own.
func TestSenderPolicy(t *testing.T) {
	f := newFixture(t, mail.Limits{})
	dns := dnstest.Start(t)
	acme := dns.NewKey(t, "acme.example", "s1")
	evil := dns.NewKey(t, "evil.example", "s1")
	dns.SetTXT("_dmarc.acme.example", "v=DMARC1; p=reject")
	dns.NewKey(t, "slow.example", "s1")
	dns.Stall("s1._domainkey.slow.example")
	var logs bytes.Buffer
	verifier := senderauth.New(senderauth.Options{TrustedIDs: []string{trustedID}, Resolver: senderauth.NewResolver(dns.Addr),
		Timeout: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	opts := ingest.ProcessorOptions{ReplyAddress: replyAddress, Tokens: f.signer, Verifier: verifier}
	strict := ingest.NewProcessor(f.svc, f.st, f.blobs, opts)
	opts.SenderAuth = ingest.Lenient
	lenient := ingest.NewProcessor(f.svc, f.st, f.blobs, opts)

	ref := f.ref()
	tok := f.tokenAddress(t, f.c.Number, f.contact.ID)
	old, err := casebook.PlusAddress(replyAddress, f.signer.Sign(casebook.ReplyToken{CaseNumber: f.c.Number, UserID: f.contact.ID, Expires: time.Now().Add(-24 * time.Hour)}))
	if err != nil {
		t.Fatal(err)
	}
	staff := "From: Sam <sam@support.example>"
	alice := "From: Alice <alice@acme.example>"
	mk := func(id string, headers ...string) []byte {
		return msg{headers: append(headers, "Message-ID: <"+id+"@x.example>", "Date: Tue, 3 Mar 2026 18:11:58 +0100"), body: "see attached",
			files: []file{{"scan.pdf", "application/pdf", pdf}}}.bytes()
	}
	signed := func(k *dnstest.Key, id string, headers ...string) []byte { return k.Sign(t, mk(id, headers...)) }
	tests := []struct {
		name    string
		p       *ingest.MailProcessor
		raw     []byte
		want    ingest.Disposition
		code    ingest.Code
		verdict senderauth.Result
	}{
		{"forged staff From, subject rule", strict, mk("s1", staff, "Subject: Re: ["+ref+"] x"), ingest.Quarantined, ingest.CodeSenderNotVerified, senderauth.None},
		{"forged staff From, subject rule, lenient", lenient, mk("s2", staff, "Subject: Re: ["+ref+"] x"), ingest.Quarantined, ingest.CodeSenderNotVerified, senderauth.None},
		{"forged staff From, thread rule", strict, mk("s3", staff, "Subject: Re: x", "In-Reply-To: "+f.caseMsgID), ingest.Quarantined, ingest.CodeSenderNotVerified, senderauth.None},
		{"forged staff From, token rule", strict, mk("s4", staff, "To: "+tok, "Subject: x"), ingest.Quarantined, ingest.CodeSenderNotVerified, senderauth.None},
		{"staff whose mail passes", strict, mk("s5", passed("support.example"), staff, "Subject: Re: ["+ref+"] x"), ingest.Processed, "", senderauth.Pass},
		{"forged requester, trusted dmarc=fail, valid token", strict,
			mk("s6", "Authentication-Results: "+trustedID+"; dmarc=fail (p=reject) header.from=acme.example", alice, "To: "+tok, "Subject: x"),
			ingest.Quarantined, ingest.CodeSenderNotVerified, senderauth.Fail},
		{"dmarc=pass from an untrusted authserv-id", strict,
			mk("s7", "Authentication-Results: mx.evil.example; dmarc=pass header.from=acme.example", alice, "Subject: Re: ["+ref+"] x"),
			ingest.Quarantined, ingest.CodeSenderNotVerified, senderauth.Fail},
		{"forged trusted header below the real one", strict,
			mk("s8", "Authentication-Results: "+trustedID+"; dmarc=fail header.from=acme.example", passed("acme.example"), alice, "Subject: Re: ["+ref+"] x"),
			ingest.Quarantined, ingest.CodeSenderNotVerified, senderauth.Fail},
		{"signature by another domain", strict, evil.Sign(t, mk("s9", alice, "Subject: Re: ["+ref+"] x")), ingest.Quarantined, ingest.CodeSenderNotVerified, senderauth.Fail},
		{"signed body changed", strict, bytes.Replace(acme.Sign(t, mk("s10", alice, "Subject: Re: ["+ref+"] x")), []byte("see attached"), []byte("pay this now"), 1),
			ingest.Quarantined, ingest.CodeSenderNotVerified, senderauth.Fail},
		{"aligned signature, subject rule", strict, acme.Sign(t, mk("s11", alice, "Subject: Re: ["+ref+"] x")), ingest.Processed, "", senderauth.Pass},
		{"DNS timeout, token rule", strict, mk("s12", "DKIM-Signature: v=1; a=rsa-sha256; d=slow.example; s=s1; h=from; bh=AAAA; b=AAAA",
			"From: bob@slow.example", "To: "+tok, "Subject: x"), ingest.Quarantined, ingest.CodeNotAllowed, senderauth.None},
		{"unsigned, the domain publishes p=reject", strict, mk("s13", alice, "Subject: Re: ["+ref+"] x"), ingest.Quarantined, ingest.CodeSenderNotVerified, senderauth.Fail},
		{"no evidence, subject rule, strict", strict, mk("s17", "From: dave@nopolicy.example", "Subject: Re: ["+ref+"] x"), ingest.Quarantined, ingest.CodeSenderNotVerified, senderauth.None},
		{"no evidence, subject rule, lenient", lenient, mk("s18", "From: dave@nopolicy.example", "Subject: Re: ["+ref+"] x"), ingest.Quarantined, ingest.CodeNotAllowed, senderauth.None},
		{"no evidence, thread rule", strict, mk("s14", "From: carol@other.example", "Subject: Re: x", "In-Reply-To: "+f.caseMsgID), ingest.Quarantined, ingest.CodeNotAllowed, senderauth.None},
		{"expired token", strict, signed(acme, "s15", alice, "To: "+old, "Subject: Re: ["+ref+"] x", "In-Reply-To: "+f.caseMsgID), ingest.Quarantined, ingest.CodeTokenExpired, senderauth.Pass},
		{"html renamed .pdf", strict, acme.Sign(t, msg{headers: []string{alice, "To: " + tok, "Subject: x", "Message-ID: <s16@x.example>"}, body: "x",
			files: []file{{"invoice.pdf", "application/pdf", []byte("<!DOCTYPE html><html><body><script>location='https://x.test'</script></body></html>")}}}.bytes()),
			ingest.Quarantined, ingest.CodeFileTypeNotAllowed, senderauth.Pass},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := tt.p.Handle(t.Context(), ingest.Location{Mailbox: "INBOX", UIDValidity: 11, UID: uint32(i + 1)}, bytes.NewReader(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s: %s (sender %+v)", rep.Disposition, rep.Code, rep.Reason, rep.SenderAuth)
			if rep.Disposition != tt.want || rep.Code != tt.code || rep.SenderAuth.Result != tt.verdict {
				t.Fatalf("got %s %q with verdict %s, want %s %q with verdict %s", rep.Disposition, rep.Code, rep.SenderAuth.Result, tt.want, tt.code, tt.verdict)
			}
			if tt.want != ingest.Quarantined {
				return
			}
			items, err := f.st.Quarantine(t.Context(), casebook.QuarantineFilter{All: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				if it.ExternalID == rep.ExternalID && (it.ReasonCode != string(tt.code) || it.Meta["sender_auth"] != string(tt.verdict)) {
					t.Errorf("quarantine row has code %q and verdict %q", it.ReasonCode, it.Meta["sender_auth"])
				}
			}
		})
	}
	if !strings.Contains(logs.String(), "DNS did not answer") {
		t.Errorf("the DNS timeout was not logged: %s", logs.String())
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	io.ReadSeeker
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadSeeker.Read(p)
	c.n += int64(n)
	return n, err
}

// TestOwnDKIMRidesOnTheRead: a mail without a trusted Authentication-Results has its
// DKIM signature checked on the processor's one read of it. Besides the header read
// that decides whether the signature must be checked, a refused mail is read once,
// and an added one once more, as its files are decoded into the store.
func TestOwnDKIMRidesOnTheRead(t *testing.T) {
	f := newFixture(t, mail.Limits{})
	dns := dnstest.Start(t)
	acme := dns.NewKey(t, "acme.example", "s1")
	verifier := senderauth.New(senderauth.Options{Resolver: senderauth.NewResolver(dns.Addr)})
	p := ingest.NewProcessor(f.svc, f.st, f.blobs, ingest.ProcessorOptions{ReplyAddress: replyAddress, Tokens: f.signer, Verifier: verifier})
	mk := func(id, subject string) []byte {
		return acme.Sign(t, msg{headers: []string{"From: Alice <alice@acme.example>", "Subject: " + subject, "Message-ID: <" + id + "@acme.example>"},
			body: "see attached", files: []file{{"scan.pdf", "application/pdf", bytes.Repeat(pdf, 2000)}}}.bytes())
	}
	for _, tt := range []struct {
		name  string
		raw   []byte
		want  ingest.Disposition
		reads int64
	}{
		{"refused", mk("r1", "no case named here"), ingest.Quarantined, 1},
		{"added", mk("r2", "Re: ["+f.ref()+"] scan"), ingest.Processed, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &countingReader{ReadSeeker: bytes.NewReader(tt.raw)}
			rep, err := p.Handle(t.Context(), ingest.Location{}, r)
			if err != nil || rep.Disposition != tt.want || rep.SenderAuth.Result != senderauth.Pass {
				t.Fatalf("%s with verdict %+v, %v; want %s with a dkim pass", rep.Disposition, rep.SenderAuth, err, tt.want)
			}
			// The header read takes a few buffers' worth at most.
			if limit := tt.reads*int64(len(tt.raw)) + 16<<10; r.n > limit {
				t.Errorf("read %d bytes of a %d-byte mail, want at most %d", r.n, len(tt.raw), limit)
			}
		})
	}
}
