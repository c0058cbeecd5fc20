package bot

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned by stores when the asked-for value does not exist.
var ErrNotFound = errors.New("not found")

// RuleError explains why Stagehand refused to do something, in words a user
// can act on. Rule is the letter of the rule in the specification ("B", "C",
// "E", ...), empty when the refusal is not about one of them.
type RuleError struct {
	Rule    string
	Message string
}

func (e *RuleError) Error() string {
	if e.Rule == "" {
		return e.Message
	}
	return fmt.Sprintf("%s (rule %s)", e.Message, e.Rule)
}
