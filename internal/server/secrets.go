package server

// Secrets returns the tokens this server accepts (main and eCaptureQ),
// for the pipeline to redact: they must never appear in any output, even
// if a client's request carrying one is captured.
func (s *Server) Secrets() []string {
	var out []string
	for _, t := range []string{s.token, s.ecq.Secret} {
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}
