package admin

import "net/http"

// sandboxed wraps the admin invoke route's writer: a function's response
// is served on the admin origin, where its script could otherwise call the
// admin API (deploy) with the operator's session. Content-Security-Policy
// sandbox gives it an opaque origin of its own (no cookies, no same-origin
// requests), and nosniff keeps a browser from reading it as something else.
// They are set when the headers go out, over whatever the function set.
func sandboxed(w http.ResponseWriter) http.ResponseWriter {
	return &sandboxWriter{ResponseWriter: w}
}

type sandboxWriter struct {
	http.ResponseWriter
	wrote bool
}

func (s *sandboxWriter) WriteHeader(code int) {
	if !s.wrote {
		s.wrote = true
		h := s.ResponseWriter.Header()
		h.Set("Content-Security-Policy", "sandbox")
		h.Set("X-Content-Type-Options", "nosniff")
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *sandboxWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines, full duplex).
func (s *sandboxWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
