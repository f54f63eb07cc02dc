package server

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"nfyio.dev/storage/internal/s3api"
)

// redactedParams are query parameters whose values are credentials or
// signatures: a logged presigned URL must not be replayable.
var redactedParams = []string{
	"X-Amz-Signature",
	"X-Amz-Credential",
	"X-Amz-Security-Token",
	"Signature",
	"AWSAccessKeyId",
	"X-Nfyio-Once",
	"Policy",
}

// redactQuery returns the raw query with credential values replaced by
// REDACTED. A parameter name that does not decode is replaced whole rather
// than logged. It runs for every logged request, so a query with nothing to
// hide is returned as it is, without allocating.
func redactQuery(raw string) string {
	var b strings.Builder
	redacted := false
	copied := 0 // raw[:copied] is in b once something was redacted
	for pos := 0; pos < len(raw); {
		end := strings.IndexByte(raw[pos:], '&')
		if end < 0 {
			end = len(raw)
		} else {
			end += pos
		}
		name, _, _ := strings.Cut(raw[pos:end], "=")
		hide, whole := sensitiveParam(name)
		if hide {
			if !redacted {
				b.Grow(len(raw))
				redacted = true
			}
			b.WriteString(raw[copied:pos])
			if whole {
				b.WriteString("REDACTED")
			} else {
				b.WriteString(name)
				b.WriteString("=REDACTED")
			}
			copied = end
		}
		pos = end + 1
	}
	if !redacted {
		return raw
	}
	b.WriteString(raw[copied:])
	return b.String()
}

// sensitiveParam reports whether a (still escaped) query parameter name
// carries a credential, and whether it must be hidden whole because it
// does not decode.
func sensitiveParam(name string) (hide, whole bool) {
	if strings.IndexByte(name, '%') >= 0 || strings.IndexByte(name, '+') >= 0 {
		dec, err := url.QueryUnescape(name)
		if err != nil {
			return true, true
		}
		name = dec
	}
	for _, p := range redactedParams {
		if strings.EqualFold(name, p) {
			return true, false
		}
	}
	return false, false
}

// countingWriter records status and bytes written for the access log.
type countingWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the sendfile path of the underlying writer.
func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(r)
		w.bytes += n
		return n, err
	}
	n, err := io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	w.bytes += n
	return n, err
}

func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *countingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts request body bytes.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// observe wraps h with request accounting: the access log line, metrics and
// panic recovery. Every request passes here once.
func observe(h http.Handler, log *slog.Logger, m *metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if m != nil {
			m.inflight.Inc()
			defer m.inflight.Dec()
		}
		info := &s3api.Info{}
		cw := &countingWriter{ResponseWriter: w}
		// Count the body on a copy of the request: net/http inspects its
		// own request's Body after the handler (an unsent 100-continue
		// body must not be read; a large unread body closes the
		// connection), which a replaced Body would defeat.
		r = r.WithContext(s3api.WithInfo(r.Context(), info))
		body := &countingBody{ReadCloser: r.Body}
		r.Body = body
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic serving request", "request_id", info.RequestID, "panic", p)
				if cw.status == 0 {
					http.Error(cw, "internal error", http.StatusInternalServerError)
				}
			}
			status := cw.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			if m != nil {
				m.observe(info, status, body.n, cw.bytes, d)
			}
			if log != nil {
				log.LogAttrs(r.Context(), slog.LevelInfo, "request",
					slog.String("request_id", info.RequestID),
					slog.String("remote", r.RemoteAddr),
					slog.String("method", r.Method),
					slog.String("path", r.URL.EscapedPath()),
					slog.String("query", redactQuery(r.URL.RawQuery)),
					slog.String("access_key", info.AccessKey),
					slog.String("auth", info.AuthKind),
					slog.String("op", info.Op),
					slog.String("bucket", info.Bucket),
					slog.String("key", info.Key),
					slog.Int("status", status),
					slog.String("error", info.ErrCode),
					slog.Int64("bytes_in", body.n),
					slog.Int64("bytes_out", cw.bytes),
					slog.Duration("duration", d),
				)
			}
		}()
		h.ServeHTTP(cw, r)
	})
}
