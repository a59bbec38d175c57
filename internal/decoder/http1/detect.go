package http1

// maxMethodLen bounds an unknown method so that text which merely starts
// with capital letters is not taken for a request line.
const maxMethodLen = 20

// quickCheckLen is how much of a candidate start line is checked before the
// line is complete. Every method and the status line's version and code fit
// in it, so most non-HTTP bytes are rejected without waiting for a newline.
const quickCheckLen = 32

// IsRequestStart reports whether b begins with a complete, well-formed
// request line: METHOD SP request-target SP HTTP/1.x, ended by CRLF or LF.
// METHOD is an upper-case token of at most 20 characters (every registered
// method is one). needMore is true when b is too short to decide but every
// byte so far fits.
func IsRequestStart(b []byte) (match, needMore bool) {
	i := 0
	for ; i < len(b) && b[i] != ' '; i++ {
		if i == maxMethodLen || !isMethodChar(b[i], i == 0) {
			return false, false
		}
	}
	if i == len(b) {
		return false, true
	}
	if i == 0 {
		return false, false
	}
	i++
	t := i
	for ; i < len(b) && b[i] != ' '; i++ {
		if !isTargetChar(b[i], i == t) {
			return false, false
		}
	}
	if i == len(b) {
		return false, true
	}
	if i == t {
		return false, false
	}
	return versionEOL(b[i+1:])
}

// IsResponseStart reports whether b begins with a complete, well-formed
// status line: HTTP/1.x SP 3DIGIT [SP reason-phrase], ended by CRLF or LF.
func IsResponseStart(b []byte) (match, needMore bool) {
	ok, more := hasPrefix(b, "HTTP/1.")
	if !ok {
		return false, more
	}
	// The minor version, SP and three digits, the first 1-9.
	const codeEnd = len("HTTP/1.x 200")
	for i := len("HTTP/1."); i < codeEnd; i++ {
		if i == len(b) {
			return false, true
		}
		c := b[i]
		switch {
		case i == len("HTTP/1.x"):
			if c != ' ' {
				return false, false
			}
		case i == len("HTTP/1.x "):
			if c < '1' || c > '9' {
				return false, false
			}
		case !isDigit(c):
			return false, false
		}
	}
	b = b[codeEnd:]
	if len(b) == 0 {
		return false, true
	}
	if b[0] != ' ' {
		return eol(b)
	}
	for i, c := range b[1:] {
		if c == '\r' || c == '\n' {
			return eol(b[1+i:])
		}
		if !isFieldChar(c) {
			return false, false
		}
	}
	return false, true
}

// isStart applies the check for the direction a stream decodes.
func isStart(resp bool, b []byte) (match, needMore bool) {
	if resp {
		return IsResponseStart(b)
	}
	return IsRequestStart(b)
}

// maybeStart reports whether b could begin a message, looking only at its
// first quickCheckLen bytes.
func maybeStart(resp bool, b []byte) bool {
	if len(b) > quickCheckLen {
		b = b[:quickCheckLen]
	}
	match, needMore := isStart(resp, b)
	return match || needMore
}

// versionEOL matches "HTTP/1.x" and the line end that must follow it.
func versionEOL(b []byte) (match, needMore bool) {
	ok, more := hasPrefix(b, "HTTP/1.")
	if !ok {
		return false, more
	}
	b = b[len("HTTP/1."):]
	if len(b) == 0 {
		return false, true
	}
	if !isDigit(b[0]) {
		return false, false
	}
	return eol(b[1:])
}

// eol matches CRLF or LF.
func eol(b []byte) (match, needMore bool) {
	switch {
	case len(b) == 0:
		return false, true
	case b[0] == '\n':
		return true, false
	case b[0] != '\r':
		return false, false
	case len(b) == 1:
		return false, true
	default:
		return b[1] == '\n', false
	}
}

// hasPrefix matches a literal that may be cut short by the end of b.
func hasPrefix(b []byte, lit string) (match, needMore bool) {
	n := min(len(b), len(lit))
	if string(b[:n]) != lit[:n] {
		return false, false
	}
	return n == len(lit), n < len(lit)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isMethodChar(c byte, first bool) bool {
	switch {
	case 'A' <= c && c <= 'Z':
		return true
	case first:
		return false
	default:
		return c == '-' || c == '_' || isDigit(c)
	}
}

// isTargetChar accepts visible ASCII and obs-text (some clients send raw
// UTF-8 paths). The first byte must start one of the four target forms:
// origin ("/"), asterisk ("*"), absolute ("http:") or authority ("host:").
func isTargetChar(c byte, first bool) bool {
	if first {
		return c == '/' || c == '*' || isDigit(c) || ('a' <= c|0x20 && c|0x20 <= 'z') || c == '['
	}
	return c > ' ' && c != 0x7f
}

// isFieldChar accepts the bytes of a field value or reason phrase: HTAB, SP,
// visible ASCII and obs-text.
func isFieldChar(c byte) bool {
	return c == '\t' || (c >= ' ' && c != 0x7f)
}

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	return tokenTable[c]
}

var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
