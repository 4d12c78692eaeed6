package mail

import (
	"regexp"
	"strings"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// readHeader fills m's header fields from the top-level header.
func readHeader(m *Message, th textproto.Header) {
	h := gomail.Header{Header: message.Header{Header: th}}
	m.MessageID = firstID(th.Get("Message-Id"))
	if from := addresses(h, "From"); len(from) > 0 {
		m.From = from[0]
	}
	m.To = addrSpecs(addresses(h, "To"))
	m.Cc = addrSpecs(addresses(h, "Cc"))
	m.DeliveredTo = addrSpecs(addresses(h, "Delivered-To"))
	m.XOriginalTo = addrSpecs(addresses(h, "X-Original-To"))
	m.Subject = strings.TrimSpace(decodeText(th.Get("Subject")))
	m.InReplyTo = msgIDs(th.Get("In-Reply-To"))
	for _, f := range th.Values("References") {
		m.References = append(m.References, msgIDs(f)...)
	}
	if d, err := h.Date(); err == nil {
		m.Date = d
	}
	m.AutoReply = autoReply(th, m.From.Address)
}

// addrSpecPattern finds addr-specs in a field go-message cannot parse, so that a
// sloppy To: line still carries its reply token.
var addrSpecPattern = regexp.MustCompile(`[^\s<>,;:"()\[\]]+@[^\s<>,;:"()\[\]]+`)

// addresses reads every value of an address field (Delivered-To appears once per hop).
func addresses(h gomail.Header, key string) []Address {
	var out []Address
	for _, v := range h.Values(key) {
		one := gomail.HeaderFromMap(map[string][]string{key: {v}})
		list, err := one.AddressList(key)
		if err == nil {
			for _, a := range list {
				out = append(out, Address{Name: a.Name, Address: strings.ToLower(a.Address)})
			}
			continue
		}
		for _, a := range addrSpecPattern.FindAllString(decodeText(v), -1) {
			out = append(out, Address{Address: strings.ToLower(strings.Trim(a, "."))})
		}
	}
	return out
}

func addrSpecs(as []Address) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.Address)
	}
	return out
}

// msgIDs reads the msg-ids of In-Reply-To or References (RFC 5322 section 3.6.4):
// each "<...>" without its brackets. A bare id without brackets, as some clients
// write, is taken when it looks like one.
func msgIDs(v string) []string {
	var out []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(v[i+1 : i+j]); id != "" && !strings.ContainsAny(id, " \t<") {
			out = append(out, id)
		}
		v = v[i+j+1:]
	}
	if out == nil {
		if id := strings.TrimSpace(v); strings.Contains(id, "@") && !strings.ContainsAny(id, " \t<>") {
			out = append(out, id)
		}
	}
	return out
}

func firstID(v string) string {
	if ids := msgIDs(v); len(ids) > 0 {
		return ids[0]
	}
	return ""
}
