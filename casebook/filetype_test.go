package casebook_test

import (
	"testing"

	"github.com/casebookhq/casebook/casebook"
)

func TestTypeAllowed(t *testing.T) {
	narrow := []string{"application/pdf", "image/png", "text/plain"}
	tests := []struct {
		name, contentType string
		allowed           []string
		want              bool
	}{
		{"pdf", "application/pdf", nil, true},
		{"dicom", "application/dicom", nil, true},
		{"hl7 or edi text", "text/plain; charset=utf-8", nil, true},
		{"csv", "text/csv", nil, true},
		{"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", nil, true},
		{"zip", "application/zip", nil, true},
		{"unknown binary", "application/octet-stream", nil, true},
		{"windows program", "application/vnd.microsoft.portable-executable", nil, false},
		{"elf", "application/x-elf", nil, false},
		{"mach-o", "application/x-mach-binary", nil, false},
		{"msi", "application/x-ms-installer", nil, false},
		{"shell script", "text/x-shellscript; charset=utf-8", nil, false},
		{"javascript", "text/javascript", nil, false},
		{"html or hta", "text/html; charset=utf-8", nil, false},
		{"svg", "image/svg+xml", nil, false},
		{"upper case", "Text/HTML", nil, false},
		{"narrowed: listed", "image/png", narrow, true},
		{"narrowed: zip not listed", "application/zip", narrow, false},
		{"narrowed: html stays refused", "text/html", append(narrow, "text/html"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := casebook.TypeAllowed(tt.contentType, tt.allowed); got != tt.want {
				t.Errorf("TypeAllowed(%q, %v) = %v, want %v", tt.contentType, tt.allowed, got, tt.want)
			}
		})
	}
}
