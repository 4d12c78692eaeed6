package templates

import "embed"

// Mail holds the mail templates, one pair per outbox kind: KIND.txt (text/template,
// with the subject in a "subject" block) and KIND.html (html/template, filling the
// "content" block of layout.html).
//
//go:embed mail
var Mail embed.FS
