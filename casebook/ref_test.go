package casebook

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFindAll(t *testing.T) {
	tests := []struct {
		text string
		want []int64
	}{
		{"CASE-123", []int64{123}},
		{"Re: [CASE-000123] Lab results", []int64{123}},
		{"RE: case-000123", []int64{123}},
		{"AW: Case #45 attached", []int64{45}},
		{"see case#45.", []int64{45}},
		{"(CASE-7), again CASE-000007", []int64{7}},
		{"CASE-#9", []int64{9}},
		{"CASE-1 and CASE-2", []int64{1, 2}},
		{"Fwd: [CASE-000123]: scan", []int64{123}},
		{"café CASE-5", []int64{5}},
		{"SHOWCASE-12", nil},
		{"CASE-12X", nil},
		{"CASE_12", nil},
		{"CASE-12-3", nil},
		{"CASE-1.5", nil},
		{"CASE-0", nil},
		{"CASE-0000000000", nil},
		{"CASE-1234567890", nil},
		{"in case 2 files fail", nil},
		{"channel <#123456789012345678>", nil},
		{"#123", nil},
		{"CASE-", nil},
		{"", nil},
		{"éCASE-5", nil},
		{"CASE-999999999", []int64{999999999}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got := DefaultRefFormat.FindAll(tt.text)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FindAll(%q) (-want +got):\n%s", tt.text, diff)
			}
		})
	}
}

func TestFind(t *testing.T) {
	if _, err := DefaultRefFormat.Find("CASE-1 and case #2"); !errors.Is(err, ErrAmbiguousCase) {
		t.Errorf("two cases: err = %v, want ErrAmbiguousCase", err)
	}
	if _, err := DefaultRefFormat.Find("hello"); !errors.Is(err, ErrNoCaseRef) {
		t.Errorf("no case: err = %v, want ErrNoCaseRef", err)
	}
	if n, err := DefaultRefFormat.Find("CASE-3, re CASE-000003"); err != nil || n != 3 {
		t.Errorf("same case twice: %d, %v", n, err)
	}
}

func TestRefFormatPrefix(t *testing.T) {
	f := RefFormat{Prefix: "TKT"}
	if got := f.Format(42); got != "TKT-000042" {
		t.Errorf("Format = %q", got)
	}
	if got := f.FindAll("tkt-42 and CASE-7"); !cmp.Equal(got, []int64{42}) {
		t.Errorf("FindAll = %v", got)
	}
}

func TestParse(t *testing.T) {
	for _, s := range []string{"CASE-000123", "case-123", "123", " CASE #123 ", "[CASE-123]"} {
		if n, err := DefaultRefFormat.Parse(s); err != nil || n != 123 {
			t.Errorf("Parse(%q) = %d, %v", s, n, err)
		}
	}
	for _, s := range []string{"", "CASE-1 CASE-2", "abc", "0", "-5", "SHOWCASE-123"} {
		if _, err := DefaultRefFormat.Parse(s); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("Parse(%q) err = %v, want ErrInvalidInput", s, err)
		}
	}
}

// FuzzFindAll checks the parser's invariants on any input: it never panics, every
// number it reports is in range and printable, and the printed form parses back.
func FuzzFindAll(f *testing.F) {
	for _, s := range []string{"Re: [CASE-000123] x", "case #4", "SHOWCASE-1", "CASE-1-2", "<#123>", "CASE-1 CASE-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		refs := DefaultRefFormat.FindAll(text)
		seen := map[int64]bool{}
		for _, n := range refs {
			if n <= 0 || n > MaxCaseNumber {
				t.Fatalf("FindAll(%q) gave %d out of range", text, n)
			}
			if seen[n] {
				t.Fatalf("FindAll(%q) repeated %d", text, n)
			}
			seen[n] = true
			printed := DefaultRefFormat.Format(n)
			if got, err := DefaultRefFormat.Find(printed); err != nil || got != n {
				t.Fatalf("Format(%d) = %q does not parse back: %d, %v", n, printed, got, err)
			}
			if !strings.Contains(strings.ToUpper(text), "CASE") {
				t.Fatalf("FindAll(%q) found %d without the prefix", text, n)
			}
		}
	})
}
