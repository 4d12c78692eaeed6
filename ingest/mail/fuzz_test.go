package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// FuzzParse feeds the parser arbitrary mail, seeded with the corpus. Whatever the
// input, it must not panic, must stay within its limits, and the streaming pass must
// yield exactly what the measuring pass listed.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.eml"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	lim := Limits{MaxMessageSize: 1 << 20, MaxAttachmentSize: 64 << 10, MaxParts: 50, MaxDepth: 5, MaxHeaderBytes: 16 << 10}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(bytes.NewReader(raw), lim)
		if m == nil {
			t.Fatal("nil message")
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrLimit) {
				t.Fatalf("error neither malformed nor a limit: %v", err)
			}
			return
		}
		if !utf8.ValidString(m.Text) || !utf8.ValidString(m.Subject) || !utf8.ValidString(m.Reply) {
			t.Error("text is not UTF-8")
		}
		// Each attachment streamed as Parse measured it: by Attachments, and by the
		// one read of Begin and Rest, which also gives Parse's text.
		same := func(pass string, i *int) func(a Attachment, body io.Reader) error {
			return func(a Attachment, body io.Reader) error {
				h := sha256.New()
				n, err := io.Copy(h, body)
				if err != nil {
					return err
				}
				if *i >= len(m.Attachments) || m.Attachments[*i].Size != n || m.Attachments[*i].SHA256 != hex.EncodeToString(h.Sum(nil)) ||
					m.Attachments[*i].Filename != a.Filename {
					t.Errorf("%s: streamed attachment %d differs", pass, *i)
				}
				checkFilename(t, a.Filename)
				if n > lim.MaxAttachmentSize {
					t.Errorf("%s: attachment of %d bytes passed a limit of %d", pass, n, lim.MaxAttachmentSize)
				}
				*i++
				return nil
			}
		}
		var i int
		err = Attachments(bytes.NewReader(raw), lim, same("second pass", &i))
		if err != nil || i != len(m.Attachments) {
			t.Errorf("second pass: %d of %d attachments, %v", i, len(m.Attachments), err)
		}
		rd, err := Begin(bytes.NewReader(raw), lim)
		if err != nil {
			t.Fatalf("one read: the header Parse read fails: %v", err)
		}
		var j int
		err = rd.Rest(same("one read", &j))
		if got := rd.Message(); err != nil || j != len(m.Attachments) || got.Text != m.Text || got.Reply != m.Reply || got.Subject != m.Subject {
			t.Errorf("one read: %d of %d attachments, %v; text %q, want %q", j, len(m.Attachments), err, got.Text, m.Text)
		}
	})
}

// FuzzFilename feeds the filename decoder arbitrary header values: the cleaned name
// must always be safe to show.
func FuzzFilename(f *testing.F) {
	f.Add(`attachment; filename*0*=UTF-8''%C3%9C; filename*1="ber.pdf"`, `application/pdf; name="x.pdf"`)
	f.Add(`attachment; filename="=?UTF-8?B?0JLRi9C/0LjRgdC60LAucGRm?="`, "")
	f.Fuzz(func(t *testing.T, disposition, contentType string) {
		name := Filename(disposition, contentType)
		if !utf8.ValidString(name) {
			t.Errorf("decoded name %q is not UTF-8", name)
		}
		checkFilename(t, CleanFilename(name))
	})
}

func checkFilename(t *testing.T, name string) {
	t.Helper()
	switch {
	case name == "":
		t.Error("empty filename")
	case len(name) > 255:
		t.Errorf("filename of %d bytes", len(name))
	case !utf8.ValidString(name):
		t.Errorf("filename %q is not UTF-8", name)
	case strings.ContainsAny(name, "/\\\x00\r\n\u202e"):
		t.Errorf("filename %q keeps a separator, control or bidi override", name)
	case !norm.NFC.IsNormalString(name):
		t.Errorf("filename %q is not NFC", name)
	}
}

// FuzzBase64Reader holds the one-pass base64 reader to encoding/base64: whatever the
// bytes outside the alphabet and however the input is handed over, input the standard
// decoder takes gives the same bytes, and a broken last quantum is an error.
func FuzzBase64Reader(f *testing.F) {
	for _, s := range []string{"", "QUJD", "QUJD\r\nREVG\r\n", "QQ==", "QUI=\r\n", "QU JD\tRA==", "QUJ", "Q", "QQ=", "****", "QUJD\r\n--b--"} {
		f.Add([]byte(s), uint8(0))
	}
	f.Add([]byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("casebook "), 2000))), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		var kept []byte
		for _, c := range in {
			if base64Alphabet[c] {
				kept = append(kept, c)
			}
		}
		want, werr := base64.StdEncoding.DecodeString(string(kept))
		var r io.Reader = bytes.NewReader(in)
		switch split % 3 {
		case 1:
			r = iotest.OneByteReader(r)
		case 2:
			r = iotest.HalfReader(r)
		}
		got, err := io.ReadAll(&base64Reader{r: r})
		switch {
		case werr == nil && (err != nil || !bytes.Equal(got, want)):
			t.Fatalf("decoded %q, %v; want %q", got, err, want)
		case werr != nil && err == nil && !bytes.Contains(kept[:max(0, len(kept)-4)], []byte("=")):
			// Padding inside the input may end one quantum of several, read apart;
			// anything else the standard decoder refuses must be refused.
			t.Fatalf("decoded %q without an error; encoding/base64 says %v", got, werr)
		}
	})
}
