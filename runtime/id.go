package runtime

import (
	"fmt"
	"regexp"
)

// maxIDLength bounds container ids; containerd and CRI use 64 hex characters.
const maxIDLength = 1024

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// ValidateID rejects a container id that could escape the state directory once it
// becomes a path component.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("invalid container id: the id is empty")
	}

	if len(id) > maxIDLength {
		return fmt.Errorf("invalid container id %.32q...: longer than %d characters", id, maxIDLength)
	}

	if !validID.MatchString(id) {
		return fmt.Errorf("invalid container id %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", id)
	}
	return nil
}
