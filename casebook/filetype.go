package casebook

import (
	"fmt"
	"slices"
	"strings"
)

// RefusedTypes are the sniffed media types no channel stores: programs and scripts a
// click could run (PE, ELF, Mach-O, MSI, Java and Android packages, shortcuts, help
// files) and markup that carries script (HTML, HTA — sniffed as HTML —, XHTML, SVG).
// Everything a billing or clinical team sends stays allowed: PDF, images, DICOM,
// office files, CSV and plain-text EDI or HL7, zip, and unknown binary data.
var RefusedTypes = []string{
	"application/vnd.microsoft.portable-executable",
	"application/x-elf", "application/x-object", "application/x-executable", "application/x-sharedlib",
	"application/x-mach-binary",
	"application/x-ms-installer", "application/x-installshield",
	"application/java-archive", "application/x-java-applet", "application/vnd.android.package-archive",
	"application/x-chrome-extension", "application/x-shockwave-flash", "application/wasm",
	"application/vnd.debian.binary-package", "application/x-rpm",
	"application/x-ms-shortcut", "application/vnd.ms-htmlhelp",
	"application/x-bytecode.python",
	"text/html", "application/xhtml+xml", "image/svg+xml",
	"text/javascript", "text/x-shellscript", "text/x-python", "text/x-perl", "text/x-php",
	"text/x-ruby", "text/x-lua", "text/x-tcl",
}

// TypeAllowed is the one decision on a file's sniffed media type, for every channel:
// never one of RefusedTypes, and one of allowed when allowed is not empty. Parameters
// such as "; charset=utf-8" are ignored.
func TypeAllowed(contentType string, allowed []string) bool {
	base, _, _ := strings.Cut(contentType, ";")
	base = strings.ToLower(strings.TrimSpace(base))
	if slices.Contains(RefusedTypes, base) {
		return false
	}
	return len(allowed) == 0 || slices.Contains(allowed, base)
}

// checkType refuses a stored file whose sniffed type the policy does not allow.
func (s *Service) checkType(name string, b StoredBlob) error {
	if TypeAllowed(b.ContentType, s.opt.AllowedTypes) {
		return nil
	}
	base, _, _ := strings.Cut(b.ContentType, ";")
	return fmt.Errorf("%w: %q is %s", ErrFileTypeNotAllowed, SanitizeFilename(name), base)
}
