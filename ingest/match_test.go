package ingest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/ingest"
	"github.com/casebookhq/casebook/ingest/mail"
)

// threads is an outbox of two case mails: <a@support.example> of case 7 and
// <b@support.example> of case 8.
func threads(_ context.Context, ids []string) ([]int64, error) {
	var out []int64
	for _, id := range ids {
		switch id {
		case "<a@support.example>":
			out = append(out, 7)
		case "<b@support.example>":
			out = append(out, 8)
		}
	}
	return out, nil
}

func newMatcher(t testing.TB) (*ingest.Matcher, *casebook.TokenSigner) {
	signer, err := casebook.NewTokenSigner(tokenKey)
	if err != nil {
		t.Fatal(err)
	}
	return &ingest.Matcher{ReplyAddress: replyAddress, Tokens: signer, Refs: casebook.DefaultRefFormat, Threads: threads}, signer
}

func TestMatcher(t *testing.T) {
	m, signer := newMatcher(t)
	tok := func(c int64) string {
		a, _ := casebook.PlusAddress(replyAddress, signer.Sign(casebook.ReplyToken{CaseNumber: c, UserID: 3}))
		return a
	}
	expired := func(c int64) string {
		a, _ := casebook.PlusAddress(replyAddress, signer.Sign(casebook.ReplyToken{CaseNumber: c, UserID: 3, Expires: time.Now().Add(-time.Hour)}))
		return a
	}
	tests := []struct {
		name string
		msg  mail.Message
		want ingest.Match
		err  error
	}{
		{"expired token, never the subject rule", mail.Message{To: []string{expired(5)}, InReplyTo: []string{"a@support.example"}, Subject: "CASE-9"},
			ingest.Match{CaseNumber: 5, By: ingest.MatchedByToken}, casebook.ErrTokenExpired},
		{"expired token beside a valid one", mail.Message{To: []string{expired(5)}, Cc: []string{tok(6)}}, ingest.Match{CaseNumber: 6, By: ingest.MatchedByToken, Proven: true}, nil},
		{"token in To", mail.Message{To: []string{tok(5)}, Subject: "CASE-9"}, ingest.Match{CaseNumber: 5, By: ingest.MatchedByToken, Proven: true}, nil},
		{"token upper-cased by a server", mail.Message{XOriginalTo: []string{strings.ToUpper(tok(5))}}, ingest.Match{CaseNumber: 5, By: ingest.MatchedByToken, Proven: true}, nil},
		{"same token twice", mail.Message{To: []string{tok(5)}, Cc: []string{tok(5)}}, ingest.Match{CaseNumber: 5, By: ingest.MatchedByToken, Proven: true}, nil},
		{"two tokens", mail.Message{To: []string{tok(5)}, Cc: []string{tok(6)}}, ingest.Match{By: ingest.MatchedByToken}, casebook.ErrAmbiguousCase},
		{"token of another reply address", mail.Message{To: []string{strings.Replace(tok(5), "support.example", "evil.example", 1)}, Subject: "x"},
			ingest.Match{By: ingest.MatchedBySubject}, casebook.ErrNoCaseRef},
		{"In-Reply-To", mail.Message{InReplyTo: []string{"a@support.example"}, Subject: "CASE-9"}, ingest.Match{CaseNumber: 7, By: ingest.MatchedByThread, Proven: true}, nil},
		{"In-Reply-To before References", mail.Message{InReplyTo: []string{"a@support.example"}, References: []string{"b@support.example"}},
			ingest.Match{CaseNumber: 7, By: ingest.MatchedByThread, Proven: true}, nil},
		{"nearest reference", mail.Message{References: []string{"a@support.example", "x@y", "b@support.example"}},
			ingest.Match{CaseNumber: 8, By: ingest.MatchedByThread, Proven: true}, nil},
		{"blank ids", mail.Message{InReplyTo: []string{""}, References: []string{""}}, ingest.Match{By: ingest.MatchedBySubject}, casebook.ErrNoCaseRef},
		{"subject", mail.Message{Subject: "RE: AW: [case-000012] x"}, ingest.Match{CaseNumber: 12, By: ingest.MatchedBySubject}, nil},
		{"subject with two cases", mail.Message{Subject: "CASE-1 CASE-2"}, ingest.Match{By: ingest.MatchedBySubject}, casebook.ErrAmbiguousCase},
		{"nothing", mail.Message{Subject: "hello"}, ingest.Match{By: ingest.MatchedBySubject}, casebook.ErrNoCaseRef},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Match(t.Context(), &tt.msg)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzMatcher feeds the matcher arbitrary recipients, thread ids and subjects. Only a
// verified token or one of our Message-IDs may prove the sender, and every match
// names a case the rule really found.
func FuzzMatcher(f *testing.F) {
	m, signer := newMatcher(f)
	good, _ := casebook.PlusAddress(replyAddress, signer.Sign(casebook.ReplyToken{CaseNumber: 5, UserID: 3}))
	f.Add(good, "", "", "Re: CASE-000001")
	f.Add("support+aaaaaaaaaaaaaaaaaaaa@support.example", "a@support.example", "", "")
	f.Add("", "", "x@y b@support.example", "[CASE-12] and case#13")
	f.Fuzz(func(t *testing.T, to, inReplyTo, references, subject string) {
		msg := &mail.Message{To: strings.Fields(to), InReplyTo: strings.Fields(inReplyTo), References: strings.Fields(references), Subject: subject}
		got, err := m.Match(context.Background(), msg)
		if err != nil {
			if !errors.Is(err, casebook.ErrNoCaseRef) && !errors.Is(err, casebook.ErrAmbiguousCase) {
				t.Fatalf("unexpected error %v", err)
			}
			if got.CaseNumber != 0 || got.Proven {
				t.Fatalf("failed match %+v names a case", got)
			}
			return
		}
		if got.CaseNumber <= 0 {
			t.Fatalf("match %+v without a case", got)
		}
		switch got.By {
		case ingest.MatchedByToken:
			found := false
			for _, addr := range msg.To {
				if tk, err := signer.Verify(casebook.TokenFromAddress(replyAddress, addr)); err == nil && tk.CaseNumber == got.CaseNumber {
					found = true
				}
			}
			if !found || !got.Proven {
				t.Fatalf("token match %+v without a valid token", got)
			}
		case ingest.MatchedByThread:
			if got.CaseNumber != 7 && got.CaseNumber != 8 || !got.Proven {
				t.Fatalf("thread match %+v", got)
			}
		case ingest.MatchedBySubject:
			if got.Proven {
				t.Fatal("a subject proves nothing")
			}
			if n, err := casebook.DefaultRefFormat.Find(subject); err != nil || n != got.CaseNumber {
				t.Fatalf("subject match %+v, but the subject names %d, %v", got, n, err)
			}
		default:
			t.Fatalf("match by %q", got.By)
		}
	})
}

// FuzzToken checks reply tokens as the channel meets them: inside a plus-address, in
// any letter case. A token verifies only as what was signed, and nothing a stranger
// makes up from a case number verifies.
func FuzzToken(f *testing.F) {
	signer, err := casebook.NewTokenSigner(tokenKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(int64(123), int64(45), "support+abc@support.example", true)
	f.Add(int64(1), int64(1), "SUPPORT+X@SUPPORT.EXAMPLE", false)
	f.Fuzz(func(t *testing.T, caseNumber, userID int64, addr string, upper bool) {
		// Tokens name real rows: case numbers up to MaxCaseNumber, user ids up to 2^62.
		if caseNumber > 0 && caseNumber <= casebook.MaxCaseNumber && userID > 0 && userID <= 1<<62 {
			want := casebook.ReplyToken{CaseNumber: caseNumber, UserID: userID, Expires: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}
			plus, err := casebook.PlusAddress(replyAddress, signer.Sign(want))
			if err != nil {
				t.Fatal(err)
			}
			if upper {
				plus = strings.ToUpper(plus)
			}
			got, err := signer.Verify(casebook.TokenFromAddress(replyAddress, plus))
			if err != nil || got != want {
				t.Fatalf("round trip of %+v: %+v, %v", want, got, err)
			}
		}
		tok := casebook.TokenFromAddress(replyAddress, addr)
		if got, err := signer.Verify(tok); err == nil {
			// Only what the signer made verifies.
			if again, err := signer.Verify(signer.Sign(got)); err != nil || again != got {
				t.Fatalf("%q verified as %+v, which does not round-trip", tok, got)
			}
		}
	})
}
