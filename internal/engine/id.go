package engine

import (
	"fmt"
	"unicode/utf8"
)

// MaxIDBytes bounds an execution ID, the same on every backend.
const MaxIDBytes = 255

// validateID applies the rules an execution ID follows on every backend: valid UTF-8,
// at most MaxIDBytes bytes, no whitespace or control character (NUL included). The
// engine checks them before a backend sees the ID, so SQLite and PostgreSQL agree.
func validateID(id string) error {
	if id == "" {
		return fmt.Errorf("execution ID is empty")
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("execution ID %q is not valid UTF-8: use printable text", id)
	}
	if len(id) > MaxIDBytes {
		return fmt.Errorf("execution ID is %d bytes long; use at most %d", len(id), MaxIDBytes)
	}
	for _, r := range id {
		if r < 0x21 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("execution ID %q contains whitespace or a control character", id)
		}
	}
	return nil
}
