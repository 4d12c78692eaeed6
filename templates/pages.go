// Package templates embeds casebook's templates: the web page's HTML pages and
// stylesheet (Pages) and the outbox's mails (Mail).
//
// Pages holds pages/base.html, the layout every page fills, one file per page that
// defines its "content" block, and static/ with the stylesheet. The web package
// parses them once at start-up.
package templates

import "embed"

// Pages holds the web page's templates (pages/) and static files (static/).
//
//go:embed pages static
var Pages embed.FS
