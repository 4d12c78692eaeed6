package mail

import (
	"strings"

	"github.com/emersion/go-message/textproto"
)

// autoReply says why a message was sent by a machine rather than a person, or "".
// Such mail is never added to a case and never answered: answering an auto-reply is
// how mail loops start (RFC 3834 section 2).
func autoReply(h textproto.Header, from string) string {
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" && !strings.HasPrefix(v, "no") {
		return "Auto-Submitted: " + v // RFC 3834 section 5
	}
	for _, k := range []string{"X-Autoreply", "X-Autorespond", "X-Autoresponse"} {
		if h.Has(k) {
			return k + " header"
		}
	}
	switch p := strings.ToLower(strings.TrimSpace(h.Get("Precedence"))); p {
	case "bulk", "junk", "list", "auto_reply":
		return "Precedence: " + p
	}
	if rp := h.Values("Return-Path"); len(rp) > 0 {
		// A null reverse-path marks a delivery status notification (RFC 5321 section 4.5.5).
		if v := strings.TrimSpace(rp[0]); v == "<>" || v == "" {
			return "null Return-Path"
		}
	}
	if mt, params := parseHeaderValue(h.Get("Content-Type")); mt == "multipart/report" {
		return "multipart/report (" + params["report-type"] + ")" // RFC 6522
	}
	local, _, _ := strings.Cut(strings.ToLower(from), "@")
	switch local {
	case "mailer-daemon", "postmaster":
		return "sent by " + local
	}
	return ""
}
