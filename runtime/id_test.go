package runtime

import (
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	cases := []struct {
		name  string
		id    string
		valid bool
	}{
		{name: "containerd hex id", id: strings.Repeat("ab12", 16), valid: true},
		{name: "name with dots and dashes", id: "demo-1.web_2", valid: true},
		{name: "empty", id: "", valid: false},
		{name: "parent folder", id: "..", valid: false},
		{name: "path separator", id: "a/b", valid: false},
		{name: "leading dash", id: "-rf", valid: false},
		{name: "space", id: "a b", valid: false},
		{name: "too long", id: strings.Repeat("a", maxIDLength+1), valid: false},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateID(tc.id)
			if tc.valid && err != nil {
				t.Errorf("ValidateID(%q) = %v, want nil", tc.id, err)
			}
			if !tc.valid && err == nil {
				t.Errorf("ValidateID(%q) = nil, want an error", tc.id)
			}
		})
	}
}
