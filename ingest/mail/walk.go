package mail

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// walker visits a message's parts depth first. It uses go-message's textproto layer
// rather than message.Entity, because Entity converts every text/* part to UTF-8 and
// an attached .txt or .csv must be stored byte for byte as the sender sent it.
type walker struct {
	lim      Limits
	parts    int
	raw      *capReader
	onHeader func(h textproto.Header)
	onText   func(mediaType, charset string, body io.Reader) error
	onFile   func(a Attachment, body io.Reader) error
}

// headerCap lets the header block be read with one limit and the body with another.
type headerCap struct {
	r io.Reader
	n int64
}

var errHeaderTooBig = errors.New("header too big")

func (h *headerCap) Read(p []byte) (int, error) {
	if h.n <= 0 {
		return 0, errHeaderTooBig
	}
	if int64(len(p)) > h.n {
		p = p[:h.n]
	}
	n, err := h.r.Read(p)
	h.n -= int64(n)
	return n, err
}

func (w *walker) walk(r io.Reader) error {
	h, br, err := w.head(r)
	if err != nil {
		return err
	}
	return w.body(h, br)
}

// head reads the top-level header. It is apart from body so that a caller can decide
// from the header alone what the parts are for before any of them is read.
func (w *walker) head(r io.Reader) (textproto.Header, *bufio.Reader, error) {
	msgErr := limitErr("message is larger than %d bytes", w.lim.MaxMessageSize)
	cr := &capReader{r: r, max: w.lim.MaxMessageSize, err: msgErr}
	w.raw = cr
	hc := &headerCap{r: cr, n: w.lim.MaxHeaderBytes}
	br := bufio.NewReader(hc)
	h, err := textproto.ReadHeader(br)
	if w.onHeader != nil {
		w.onHeader(h)
	}
	switch {
	case errors.Is(err, errHeaderTooBig):
		return h, nil, limitErr("header is larger than %d bytes", w.lim.MaxHeaderBytes)
	case errors.Is(err, ErrLimit):
		return h, nil, err
	case err != nil && !errors.Is(err, io.EOF):
		return h, nil, malformed("header: %v", err)
	}
	hc.n = 1<<63 - 1
	return h, br, nil
}

// body walks the parts after head.
func (w *walker) body(h textproto.Header, br *bufio.Reader) error {
	if err := w.entity(h, br, 0); err != nil {
		return err
	}
	// Read what follows the last part, so the size limit holds for the whole message.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return err
	}
	return nil
}

func (w *walker) entity(h textproto.Header, body io.Reader, depth int) error {
	w.parts++
	if w.parts > w.lim.MaxParts {
		return limitErr("more than %d MIME parts", w.lim.MaxParts)
	}
	if depth > w.lim.MaxDepth {
		return limitErr("MIME parts nested deeper than %d", w.lim.MaxDepth)
	}
	mediaType, params := parseHeaderValue(h.Get("Content-Type"))
	if !strings.Contains(mediaType, "/") {
		// RFC 2045 section 5.2: a missing or unreadable Content-Type means text/plain.
		mediaType, params = "text/plain", map[string]string{}
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		return w.multipart(params["boundary"], body, depth)
	}

	disp, _ := parseHeaderValue(h.Get("Content-Disposition"))
	name := partFilename(h)
	decoded := transferDecoder(h.Get("Content-Transfer-Encoding"), body)
	isBody := (mediaType == "text/plain" || mediaType == "text/html") && name == "" && disp != "attachment"
	if isBody {
		if w.onText == nil {
			_, err := io.Copy(io.Discard, decoded)
			return w.partErr(err)
		}
		return w.partErr(w.onText(mediaType, params["charset"], decoded))
	}

	cid := strings.Trim(strings.TrimSpace(h.Get("Content-Id")), "<>")
	a := Attachment{
		DeclaredType: mediaType,
		// Outlook marks inline images only by a Content-ID inside multipart/related.
		Inline:    disp == "inline" || (disp == "" && cid != ""),
		ContentID: cid,
	}
	var src io.Reader = decoded
	if mediaType == "message/rfc822" || mediaType == "message/global" {
		// A forwarded message is kept whole, as a file a mail program opens (.eml).
		br := bufio.NewReaderSize(decoded, 16<<10)
		if name == "" {
			head, _ := br.Peek(16 << 10)
			name = innerSubject(head)
		}
		if name == "" {
			name = "forwarded message"
		}
		if !strings.HasSuffix(strings.ToLower(name), ".eml") {
			name += ".eml"
		}
		src = br
	}
	if name == "" {
		name = defaultName(mediaType)
	}
	a.Filename = CleanFilename(name)
	limErr := limitErr("attachment %q is larger than %d bytes", a.Filename, w.lim.MaxAttachmentSize)
	if w.onFile == nil {
		// Nobody wants the file: skip its encoded bytes without decoding them.
		_, err := io.Copy(io.Discard, body)
		return w.partErr(err)
	}
	capped := &faultReader{r: &capReader{r: src, max: w.lim.MaxAttachmentSize, err: limErr}}
	if err := w.onFile(a, capped); err != nil {
		if capped.err != nil {
			// The part's own fault (over the limit, bad base64), not what the
			// callback made of it: that is the message's problem to report.
			err = capped.err
		}
		return w.partErr(err)
	}
	// The callback may stop early; the rest must still be read and counted.
	_, err := io.Copy(io.Discard, capped)
	return w.partErr(err)
}

// faultReader remembers the first error other than io.EOF its reader returned.
type faultReader struct {
	r   io.Reader
	err error
}

func (f *faultReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF && f.err == nil {
		f.err = err
	}
	return n, err
}

func (w *walker) multipart(boundary string, body io.Reader, depth int) error {
	if boundary == "" {
		return malformed("multipart without a boundary")
	}
	mr := textproto.NewMultipartReader(body, boundary)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return w.partErr(err)
		}
		// The part's header was read whole by the multipart reader (bounded only by
		// the message size); it gets the top header's limit all the same, so no part
		// smuggles a header block a filter on the top one would refuse.
		if headerSize(p.Header) > w.lim.MaxHeaderBytes {
			return limitErr("a MIME part's header is larger than %d bytes", w.lim.MaxHeaderBytes)
		}
		if err := w.entity(p.Header, p, depth+1); err != nil {
			return err
		}
	}
}

// headerSize is the size of a header block as it was read, field by field.
func headerSize(h textproto.Header) int64 {
	var n int64
	for fs := h.Fields(); fs.Next(); {
		raw, err := fs.Raw()
		if err != nil {
			n += int64(len(fs.Key()) + len(fs.Value()) + 4)
			continue
		}
		n += int64(len(raw))
	}
	return n
}

// partErr classifies an error met while reading a part: limits and I/O errors pass
// through, decoding failures (bad base64, a lost boundary) are the message's fault.
func (w *walker) partErr(err error) error {
	var ce base64.CorruptInputError
	switch {
	case err == nil:
		return nil
	case w.raw.n > w.raw.max:
		// go-message formats some errors with %v, losing our sentinel.
		return w.raw.err
	case errors.Is(err, ErrLimit), errors.Is(err, ErrMalformed):
		return err
	case errors.As(err, &ce), errors.Is(err, io.ErrUnexpectedEOF), strings.HasPrefix(err.Error(), "multipart:"),
		strings.HasPrefix(err.Error(), "message:"), strings.HasPrefix(err.Error(), "quotedprintable:"):
		return malformed("%v", err)
	}
	return err
}

// transferDecoder undoes Content-Transfer-Encoding (RFC 2045 section 6). An unknown
// encoding is passed through as is: the bytes are kept and a person can look.
func transferDecoder(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return &base64Reader{r: r}
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// base64Reader decodes base64 in one pass: it drops every byte outside the alphabet
// (line breaks and anything else, as RFC 2045 section 6.8 tells decoders to) as it
// gathers the input, then decodes whole quanta. A last fragment without its padding is
// refused as encoding/base64's decoder refuses it.
type base64Reader struct {
	r io.Reader
	// in holds the kept input; n of it is waiting, fewer than 4 between fills.
	in [8192]byte
	n  int
	// out is the decoded bytes not yet read, in outBuf.
	out    []byte
	outBuf [8192 / 4 * 3]byte
	// err ends the reading once out is empty: the input's error or a decoding one.
	err error
}

func (d *base64Reader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		d.fill()
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

func (d *base64Reader) fill() {
	n, err := d.r.Read(d.in[d.n:])
	k := d.n
	for _, c := range d.in[d.n : d.n+n] {
		if base64Alphabet[c] {
			d.in[k] = c
			k++
		}
	}
	d.n = k
	whole := d.n / 4 * 4
	if err == io.EOF {
		whole = d.n
	}
	if whole > 0 {
		w, derr := base64.StdEncoding.Decode(d.outBuf[:], d.in[:whole])
		d.out = d.outBuf[:w]
		d.n = copy(d.in[:], d.in[whole:d.n])
		if derr != nil {
			d.err = derr
			return
		}
	}
	if err != nil {
		d.err = err
	}
}

var base64Alphabet = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=" {
		t[c] = true
	}
	return t
}()

// innerSubject reads the Subject of a forwarded message from its first bytes.
func innerSubject(head []byte) string {
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(head)))
	return strings.TrimSpace(decodeText(h.Get("Subject")))
}

// defaultName names a file that came without a name, by its declared type.
func defaultName(mediaType string) string {
	switch mediaType {
	case "application/ms-tnef", "application/vnd.ms-tnef":
		return "winmail.dat"
	case "image/png":
		return "image.png"
	case "image/jpeg", "image/jpg", "image/pjpeg":
		return "image.jpg"
	case "image/gif":
		return "image.gif"
	case "application/pdf":
		return "document.pdf"
	case "text/calendar":
		return "invite.ics"
	case "text/plain":
		return "text.txt"
	case "text/html":
		return "page.html"
	}
	return "attachment"
}
