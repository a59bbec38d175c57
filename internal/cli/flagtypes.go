package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// byteSize is a size flag written the way --help prints sizes: plain
// bytes (65536), or a number with a unit, with or without a space
// (64KiB, 16MiB, "64 MiB", 1G). Every unit is binary (K = KiB = KB =
// 1024), since these sizes are powers of two.
type byteSize int

var sizeUnits = map[string]int{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
}

func (b *byteSize) Set(s string) error {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(t)
	}
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	n, err := strconv.ParseUint(t[:i], 10, 40)
	if !ok || err != nil || i == 0 {
		return fmt.Errorf("not a size: want bytes, or a number with a unit: 65536, 64KiB, 16MiB, 1GiB")
	}
	if n > (1<<40)/uint64(unit) {
		return fmt.Errorf("%s is too large", s)
	}
	*b = byteSize(n * uint64(unit))
	return nil
}

func (b *byteSize) String() string {
	switch n := int(*b); {
	case n != 0 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n != 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n != 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return strconv.Itoa(n)
	}
}

func (b *byteSize) Type() string { return "size" }

// idList is a repeatable flag of numeric ids that also takes comma lists
// (--pid 12,34 --pid 56), with an error that says what an id looks like.
type idList struct {
	ids  *[]uint32
	what string // "process id", "user id"
	set  bool
}

// ids makes an idList flag over a *[]uint32 (see flagDef.value).
func ids(what string) func(p any) pflag.Value {
	return func(p any) pflag.Value { return &idList{ids: p.(*[]uint32), what: what} }
}

func (l *idList) Set(s string) error {
	if !l.set {
		*l.ids, l.set = nil, true
	}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a %s: want a number such as 1234 (repeat the flag, or separate several with commas)", f, l.what)
		}
		*l.ids = append(*l.ids, uint32(n))
	}
	return nil
}

func (l *idList) String() string {
	s := make([]string, len(*l.ids))
	for i, v := range *l.ids {
		s[i] = strconv.FormatUint(uint64(v), 10)
	}
	return "[" + strings.Join(s, ",") + "]"
}

func (l *idList) Type() string { return "ids" }
