package senderauth

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestHeaderVerdicts reads real-looking mail from each kind of receiving server. No
// resolver is given, so a message the header does not settle is none.
func TestHeaderVerdicts(t *testing.T) {
	google := []string{"mx.google.com"}
	tests := []struct {
		file    string
		trusted []string
		want    Verdict
	}{
		{"gmail_pass.eml", google, Verdict{Pass, "mx.google.com dmarc", "acme-clinic.example"}},
		{"gmail_pass.eml", []string{"mail.support.example"}, Verdict{None, "", "acme-clinic.example"}},
		// The sender's own field below Gmail's real one says pass: only the topmost counts.
		{"gmail_dmarc_fail.eml", google, Verdict{Fail, "mx.google.com dmarc", "acme-clinic.example"}},
		{"m365_pass.eml", []string{MicrosoftID}, Verdict{Pass, MicrosoftID + " dmarc", "acme-clinic.example"}},
		{"m365_pass.eml", google, Verdict{None, "", "acme-clinic.example"}},
		// An id-less field below the top one is the sender's, not Microsoft's.
		{"m365_forged_below.eml", []string{MicrosoftID}, Verdict{Fail, MicrosoftID + " dmarc", "acme-clinic.example"}},
		{"fastmail_pass.eml", []string{"*.messagingengine.com"}, Verdict{Pass, "mx6.messagingengine.com dmarc", "acme-clinic.example"}},
		{"fastmail_pass.eml", []string{"mx1.messagingengine.com"}, Verdict{None, "", "acme-clinic.example"}},
		{"rspamd_pass.eml", []string{"mail.support.example"}, Verdict{Pass, "mail.support.example dmarc", "acme-clinic.example"}},
		// No DMARC in the field: a DKIM pass by a subdomain aligns (relaxed).
		{"opendkim_only.eml", []string{"mx.support.example"}, Verdict{Pass, "mx.support.example dkim", "acme-clinic.example"}},
		{"opendmarc_fail.eml", []string{"mx.support.example"}, Verdict{Fail, "mx.support.example dmarc", "acme-clinic.example"}},
		// The sender wrote a pass under a server name nobody trusts.
		{"untrusted_pass.eml", google, Verdict{None, "", "acme-clinic.example"}},
		{"untrusted_pass.eml", nil, Verdict{None, "", "acme-clinic.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got := New(Options{TrustedIDs: tt.trusted}).Verify(t.Context(), f)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("trusting %v (-want +got):\n%s", tt.trusted, diff)
			}
		})
	}
}

func TestParseAuthResults(t *testing.T) {
	tests := []struct {
		field  string
		id     string
		method []string
	}{
		{"mx.google.com; dkim=pass header.i=@a.example; dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=a.example", "mx.google.com", []string{"dkim", "dmarc"}},
		{"mx.example 1; none", "mx.example", nil},
		{"spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=a.example;dmarc=pass action=none header.from=a.example", "", []string{"spf", "dmarc"}},
		{`mx.example; dkim=pass (comment; with ; semicolons (nested)) header.d="a.example"`, "mx.example", []string{"dkim"}},
		{"", "", nil},
	}
	for _, tt := range tests {
		id, rs := parseAuthResults(tt.field)
		var methods []string
		for _, r := range rs {
			methods = append(methods, r.method)
		}
		if id != tt.id || !cmp.Equal(methods, tt.method) {
			t.Errorf("parseAuthResults(%q) = %q, %v; want %q, %v", tt.field, id, methods, tt.id, tt.method)
		}
	}
}

func TestAligned(t *testing.T) {
	tests := []struct {
		from, d string
		strict  bool
		want    bool
	}{
		{"acme.example", "acme.example", true, true},
		{"acme.example", "mail.acme.example", false, true},
		{"acme.example", "mail.acme.example", true, false},
		{"clinic.co.uk", "other.co.uk", false, false},
		{"a.clinic.co.uk", "clinic.co.uk", false, true},
		{"acme.example", "evil.example", false, false},
	}
	for _, tt := range tests {
		if got := aligned(tt.from, tt.d, tt.strict); got != tt.want {
			t.Errorf("aligned(%q, %q, strict %v) = %v", tt.from, tt.d, tt.strict, got)
		}
	}
}
