package filter

import (
	"errors"
	"strings"
	"testing"
)

func TestErrorCases(t *testing.T) {
	tb, _ := loadTable(t)
	for _, c := range tb.Errors {
		name := c.Filter
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			f, err := Parse(c.Filter)
			if err == nil {
				t.Fatalf("accepted as %q", f.String())
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T, want *SyntaxError", err)
			}
			if !strings.Contains(se.Msg, c.Error) {
				t.Errorf("error %q, want one containing %q", se.Msg, c.Error)
			}
			if se.Pos != c.Pos {
				t.Errorf("position %d, want %d (%v)", se.Pos, c.Pos, err)
			}
		})
	}
}
