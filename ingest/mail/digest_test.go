package mail

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// digestCases are messages at the edges of Digest's reading: long and huge header
// lines around the 32 KiB piece size, a header over the 1 MiB cap, an end inside the
// header, lone and split CRs.
func digestCases() map[string][]byte {
	long := func(n int) string { return strings.Repeat("x", n) }
	body := "\r\nbody line\r\n"
	var huge strings.Builder
	for huge.Len() < digestHeaderCap+4096 {
		huge.WriteString("Received: from relay " + long(100) + "\r\nX-Note: kept " + long(50) + "\r\n")
	}
	return map[string][]byte{
		"empty":                               nil,
		"no header":                           []byte(body),
		"end inside header":                   []byte("From: a@b.example\r\nReceived: from x"),
		"end inside trace field":              []byte("From: a@b.example\r\nReceived: from x\r\n\tby y"),
		"long field":                          []byte("X-Long: " + long(70_000) + "\r\nFrom: a@b.example\r\n" + body),
		"long trace field":                    []byte("Received: " + long(70_000) + "\r\nFrom: a@b.example\r\n" + body),
		"long trace field, CRLF at piece end": []byte("Received: " + long(32768-12) + "\r\n" + "From: a@b.example\r\n" + body),
		"line of exactly a piece":             []byte("X-A: " + long(32768-6) + "\n" + "Received: x\n" + body),
		"line one over a piece":               []byte("X-A: " + long(32768-5) + "\n" + "Received: x\n" + body),
		"piece ends in a blank-looking tail":  []byte("Received: " + long(32768-10) + "\r\n\r\nbody"),
		"huge header":                         []byte(huge.String() + "Received: after the cap\r\n" + body),
		"lone CRs":                            []byte("From: a\rb\r\nReceived: c\r\n\r\nbody\rmore\r"),
		"LF only":                             []byte("Received: x\nFrom: a@b.example\n\nbody\n"),
		"folded trace field":                  []byte("Received: from x\r\n by y\r\n\tid z\r\nFrom: a@b.example\r\n" + body),
		"spam prefix fields":                  []byte("X-Spam-Score: 1\r\nX-MS-Exchange-Organization-Foo: 2\r\nFrom: a@b.example\r\n" + body),
	}
}

// TestDigestStable holds Digest to the digests earlier versions gave (testdata/
// digests.tsv): a digest is part of a mail's idempotency key, so a change would let a
// mail seen again after an upgrade be added twice. Each message is also written to a
// Digester in random pieces, as a shared read hands them over.
func TestDigestStable(t *testing.T) {
	cases := digestCases()
	files, err := filepath.Glob("testdata/corpus/*.eml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases["corpus/"+filepath.Base(f)] = b
	}
	golden, err := os.Open("testdata/digests.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer golden.Close()
	checked := 0
	for sc := bufio.NewScanner(golden); sc.Scan(); checked++ {
		want, name, _ := strings.Cut(sc.Text(), "\t")
		raw, ok := cases[name]
		if !ok {
			t.Fatalf("no message %q for the golden digest", name)
		}
		t.Run(name, func(t *testing.T) {
			got, err := Digest(bytes.NewReader(raw))
			if err != nil || got != want {
				t.Fatalf("Digest = %s, %v; want %s", got, err, want)
			}
			rng := rand.New(rand.NewPCG(uint64(len(raw)), 1))
			for range 20 {
				d := NewDigester()
				for rest := raw; len(rest) > 0; {
					n := min(len(rest), 1+rng.IntN(40_000))
					if rng.IntN(4) == 0 {
						n = min(len(rest), 1+rng.IntN(3))
					}
					d.Write(rest[:n])
					rest = rest[n:]
				}
				if got := d.Sum(); got != want {
					t.Fatalf("Digester in pieces = %s, want %s", got, want)
				}
			}
		})
	}
	if checked != len(cases) {
		t.Errorf("%d golden digests for %d messages", checked, len(cases))
	}
}
