package mail

import (
	"html"
	"regexp"
	"strings"
)

// HTMLToText turns an HTML body into readable text: tags go, block elements become
// line breaks, list items get a dash, links keep their address, scripts and styles
// vanish, entities are decoded, and blockquotes (the quoted history of HTML mail)
// become "> " lines so that ReplyText can trim them.
func HTMLToText(s string) string {
	var out strings.Builder
	quote := 0
	unclosedA := false
	atLineStart := true
	pendingSpace := false
	newline := func() {
		out.WriteByte('\n')
		atLineStart = true
		pendingSpace = false
	}
	text := func(t string) {
		if len(t) > 0 && isHTMLSpace(rune(t[0])) {
			pendingSpace = true
		}
		for _, f := range strings.FieldsFunc(t, isHTMLSpace) {
			if atLineStart {
				if quote > 0 {
					out.WriteString(strings.Repeat("> ", min(quote, 10)))
				}
				atLineStart = false
			} else if pendingSpace {
				out.WriteByte(' ')
			}
			out.WriteString(f)
			pendingSpace = true
		}
		if len(t) > 0 && isHTMLSpace(rune(t[len(t)-1])) {
			pendingSpace = true
		} else if len(t) > 0 && !atLineStart {
			pendingSpace = false
		}
	}
	for len(s) > 0 {
		lt := strings.IndexByte(s, '<')
		if lt < 0 {
			text(html.UnescapeString(s))
			break
		}
		if lt > 0 {
			text(html.UnescapeString(s[:lt]))
		}
		s = s[lt:]
		if strings.HasPrefix(s, "<!--") {
			end := strings.Index(s, "-->")
			if end < 0 {
				break
			}
			s = s[end+3:]
			continue
		}
		gt := strings.IndexByte(s, '>')
		if gt < 0 {
			break
		}
		tag := s[1:gt]
		s = s[gt+1:]
		closing := strings.HasPrefix(tag, "/")
		name := strings.ToLower(strings.TrimLeft(tag, "/"))
		if i := strings.IndexAny(name, " \t\r\n/"); i >= 0 {
			name = name[:i]
		}
		switch name {
		case "script", "style", "head", "title":
			if !closing {
				end := indexFold(s, "</"+name)
				if end < 0 {
					s = ""
				} else {
					s = s[end:]
				}
			}
		case "br":
			newline()
		case "p", "div", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre", "hr":
			if !atLineStart {
				newline()
			}
		case "li":
			if !closing {
				if !atLineStart {
					newline()
				}
				text("- ")
			}
		case "td", "th":
			pendingSpace = true
		case "blockquote":
			if !atLineStart {
				newline()
			}
			if closing {
				quote = max(quote-1, 0)
			} else {
				quote++
			}
		case "a":
			// Once no "</a" is left, later anchors need not look for one (a page of
			// unclosed anchors would otherwise cost quadratic time).
			if href := attr(tag, "href"); !closing && !unclosedA && strings.HasPrefix(href, "http") {
				var ok bool
				if s, ok = linkText(s, href, text); !ok {
					unclosedA = true
				}
			}
		}
	}
	return tidy(out.String())
}

// linkText writes an anchor's text followed by its address when they differ, so a
// download link in an HTML-only mail survives, and returns the input after the anchor.
// It reports false when the anchor is never closed.
func linkText(s, href string, text func(string)) (string, bool) {
	end := indexFold(s, "</a")
	if end < 0 {
		return s, false
	}
	inner := HTMLToText(s[:end])
	text(inner)
	if inner != href {
		text(" (" + href + ")")
	}
	return s[end:], true
}

func attr(tag, name string) string {
	i := indexFold(tag, name+"=")
	if i < 0 {
		return ""
	}
	v := tag[i+len(name)+1:]
	if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
		q := v[0]
		v = v[1:]
		if j := strings.IndexByte(v, q); j >= 0 {
			v = v[:j]
		}
	} else if j := strings.IndexAny(v, " \t>"); j >= 0 {
		v = v[:j]
	}
	return html.UnescapeString(v)
}

func isHTMLSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\u00a0'
}

// indexFold is strings.Index ignoring ASCII letter case. It stops at the first match,
// so looking for each closing tag costs the distance to it, not the rest of the page.
func indexFold(s, sub string) int {
	if sub == "" {
		return 0
	}
	lo, up := lower(sub[0]), upper(sub[0])
	for i := 0; i+len(sub) <= len(s); i++ {
		if c := s[i]; (c == lo || c == up) && strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// tidy trims each line and squeezes runs of blank lines to one.
func tidy(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if strings.TrimSpace(l) == "" {
			blank++
			if blank > 1 {
				continue
			}
			l = ""
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.Trim(strings.Join(out, "\n"), "\n")
}

// Lines that start the quoted history of a reply, in the languages our customers'
// clients use: Gmail and Apple Mail ("On … wrote:"), Outlook ("-----Original
// Message-----", or a From:/Sent: block under a rule), Thunderbird in German, French,
// Spanish and Dutch.
var (
	attributionLine = regexp.MustCompile(`(?i)^(on\s.+\swrote|am\s.+\sschrieb.*|le\s.+\sa\s+écrit|el\s.+\sescribió|op\s.+\sschreef.*)\s*:\s*$`)
	originalMessage = regexp.MustCompile(`(?i)^-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original)\s*-{2,}\s*$`)
	outlookRule     = regexp.MustCompile(`^_{10,}\s*$`)
	outlookFrom     = regexp.MustCompile(`(?i)^\*?(from|von|de|van)\s*:\*?\s`)
	outlookSent     = regexp.MustCompile(`(?i)^\*?(sent|date|gesendet|envoyé|enviado|verzonden)\s*:\*?\s`)
	mobileSignature = regexp.MustCompile(`(?i)^(sent from my \w+|sent from (outlook|mail) for \w+|get outlook for \w+|von meinem \w+ gesendet)\b`)
)

// ReplyText returns the new text of a reply: everything before the quoted history,
// without quoted lines ("> ") and without the signature (after "-- ", RFC 3676
// section 4.3, or a phone's "Sent from my iPhone").
func ReplyText(text string) string {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], " \t\r")
		trim := strings.TrimSpace(l)
		if l == "--" || l == "-- " || lines[i] == "-- " {
			break
		}
		if originalMessage.MatchString(trim) || attributionLine.MatchString(trim) {
			break
		}
		// Gmail wraps a long attribution: "On Tue, … Alice <\nalice@example.com> wrote:".
		if i+1 < len(lines) && strings.HasPrefix(strings.ToLower(trim), "on ") &&
			attributionLine.MatchString(trim+" "+strings.TrimSpace(lines[i+1])) {
			break
		}
		if outlookRule.MatchString(trim) && i+1 < len(lines) && outlookFrom.MatchString(strings.TrimSpace(lines[i+1])) {
			break
		}
		if outlookFrom.MatchString(trim) && i+1 < len(lines) && outlookSent.MatchString(strings.TrimSpace(lines[i+1])) {
			break
		}
		if strings.HasPrefix(trim, ">") {
			continue
		}
		if mobileSignature.MatchString(trim) {
			break
		}
		out = append(out, l)
	}
	return tidy(strings.Join(out, "\n"))
}
