package pasee

import (
	"strings"
	"testing"
)

// Subjects whose letters mix scripts could pass for another user's name
// ("аlice" with a Cyrillic а); names written in one script, or in the
// combinations Japanese, Chinese and Korean names use, are accepted.
func TestValidateSubjectRefusesMixedScripts(t *testing.T) {
	for _, ok := range []string{"alice", "José", "Zoë", "иван", "Ελένη", "山田太郎", "やまだ", "yamada山田", "김민준", "kim김", "王小明", "user_42", "a.b-c@d", "internals-ada", "583231", "ǅemal"} {
		if err := ValidateSubject(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"аlice", "alicе", "αlice", "pаypal", "ѕtaff", "Ιvan", "иvan", "山田иван", "alice\u200d", "\u202eecila", "a\u2066b", "\ufeffalice"} {
		if err := ValidateSubject(bad); err == nil {
			t.Errorf("%q accepted", bad)
		} else if !strings.Contains(err.Error(), "mixes") && !strings.Contains(err.Error(), "forbidden character") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
