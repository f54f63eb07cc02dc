package sigv4

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"

	"nfyio.dev/storage/internal/s3err"
)

const (
	// maxChunkLine bounds a chunk header or trailer line. A signed chunk
	// header is under 100 bytes; anything near this is not a client.
	maxChunkLine = 4096
	// maxTrailerBytes and maxTrailerLines bound the trailing headers.
	maxTrailerBytes = 16 << 10
	maxTrailerLines = 64
	// minChunkSize is S3's smallest signed chunk but the last.
	minChunkSize = 8192
)

// Body wraps r.Body according to the payload mode and returns a reader of
// the DECODED content: aws-chunked framing removed, every chunk signature
// verified (streaming signed modes), trailers parsed and their signature
// verified (signed-trailer mode). Errors surface from Read BEFORE io.EOF is
// returned, so a caller that commits only after a clean EOF never commits a
// bad body:
//   - hex SHA-256 mismatch: s3err.XAmzContentSHA256Mismatch;
//   - bad chunk or trailer signature: s3err.SignatureDoesNotMatch;
//   - non-final signed chunk under 8 KiB: s3err.InvalidChunkSizeError;
//   - body shorter than declared, or decoded length different from
//     x-amz-decoded-content-length: s3err.IncompleteBody;
//   - unparsable aws-chunked framing: s3err.InvalidRequest;
//   - trailers missing or malformed: ErrMalformedTrailer.
//
// Other read errors of r.Body (a client gone, http.MaxBytesError) are
// returned unchanged.
func (a *Auth) Body(r *http.Request) (Payload, error) {
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	switch {
	case a.Payload.Chunked():
		return newChunkedPayload(a, r, body)
	case a.Payload == PayloadSHA256:
		return &hashPayload{r: body, length: r.ContentLength, want: a.contentSHA256, h: sha256.New()}, nil
	}
	return &plainPayload{r: body, length: r.ContentLength}, nil
}

// readErr maps a read error of the raw body: a body cut short is S3's
// IncompleteBody, anything else is the caller's to interpret.
func readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return s3err.IncompleteBody.Wrap(err)
	}
	return err
}

// plainPayload is a body the signature says nothing about.
type plainPayload struct {
	r      io.Reader
	length int64
}

func (p *plainPayload) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err != nil && err != io.EOF {
		err = readErr(err)
	}
	return n, err
}

func (p *plainPayload) Length() int64        { return p.length }
func (p *plainPayload) Trailer() http.Header { return nil }

// hashPayload checks the signed hex SHA-256 of the body at its end.
type hashPayload struct {
	r      io.Reader
	length int64
	want   string
	h      hash.Hash
	err    error
}

func (p *hashPayload) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.r.Read(b)
	p.h.Write(b[:n])
	switch {
	case err == io.EOF:
		got := hex.EncodeToString(p.h.Sum(nil))
		if got != p.want {
			p.err = s3err.XAmzContentSHA256Mismatch.With(
				s3err.Field{Name: "ClientComputedContentSHA256", Value: p.want},
				s3err.Field{Name: "S3ComputedContentSHA256", Value: got},
			)
			return n, p.err
		}
		p.err = io.EOF
	case err != nil:
		p.err = readErr(err)
	}
	return n, p.err
}

func (p *hashPayload) Length() int64        { return p.length }
func (p *hashPayload) Trailer() http.Header { return nil }

// chunkedPayload decodes an aws-chunked body:
//
//	hex-size[;chunk-signature=sig]\r\n data \r\n ... 0[;chunk-signature=sig]\r\n
//
// followed by \r\n, or in the trailer modes by trailer lines
// "name:value" (and in the signed one "x-amz-trailer-signature:sig") and a
// blank line. Chunk data streams through; only header and trailer lines are
// buffered, each bounded.
type chunkedPayload struct {
	br       *bufio.Reader
	signed   bool // chunks carry signatures
	trailers bool // trailing headers follow the last chunk
	key      *derivedKey
	amzDate  string
	scope    string
	prevSig  string
	declared int64    // x-amz-decoded-content-length, -1 if not given
	expect   []string // x-amz-trailer names, lower-case

	remaining int64 // data bytes of the current chunk still to read
	inChunk   bool  // a data chunk was started and its end not yet checked
	chunkSig  string
	prevSize  int64 // size of the previous data chunk, -1 before the first
	chunks    int   // data chunks started
	h         hash.Hash
	decoded   int64
	trailer   http.Header
	done      bool
	err       error
}

func newChunkedPayload(a *Auth, r *http.Request, body io.Reader) (*chunkedPayload, error) {
	c := &chunkedPayload{
		br:       bufio.NewReaderSize(body, 16<<10),
		signed:   a.Payload == PayloadStreamingSigned || a.Payload == PayloadStreamingSignedTrailer,
		trailers: a.Payload == PayloadStreamingSignedTrailer || a.Payload == PayloadStreamingUnsignedTrailer,
		key:      a.signingKey,
		amzDate:  a.amzDate,
		scope:    a.scope,
		prevSig:  a.seedSignature,
		declared: -1,
		prevSize: -1,
	}
	if c.signed {
		if c.key == nil {
			return nil, errInvalidContentSHA256Value
		}
		c.h = sha256.New()
	}
	if v := r.Header.Get("X-Amz-Decoded-Content-Length"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, s3err.InvalidArgument.WithMessage("x-amz-decoded-content-length must be a non-negative integer").
				With(s3err.Field{Name: "ArgumentName", Value: "x-amz-decoded-content-length"},
					s3err.Field{Name: "ArgumentValue", Value: v})
		}
		c.declared = n
	}
	if c.trailers {
		for _, v := range r.Header.Values("X-Amz-Trailer") {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
					c.expect = append(c.expect, name)
				}
			}
		}
	}
	return c, nil
}

func (c *chunkedPayload) Length() int64 { return c.declared }

func (c *chunkedPayload) Trailer() http.Header {
	if !c.done {
		return nil
	}
	if c.trailer == nil {
		return http.Header{}
	}
	return c.trailer
}

func (c *chunkedPayload) fail(err error) error {
	c.err = err
	return err
}

func (c *chunkedPayload) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	for c.remaining == 0 {
		if c.inChunk {
			if err := c.endChunk(); err != nil {
				return 0, c.fail(err)
			}
		}
		last, err := c.nextChunk()
		if err != nil {
			return 0, c.fail(err)
		}
		if last {
			if err := c.finish(); err != nil {
				return 0, c.fail(err)
			}
			c.done = true
			return 0, io.EOF
		}
	}
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.br.Read(p)
	if n > 0 {
		if c.signed {
			c.h.Write(p[:n])
		}
		c.remaining -= int64(n)
		c.decoded += int64(n)
	}
	if err != nil {
		if err == io.EOF {
			if c.remaining > 0 {
				return n, c.fail(truncated(io.ErrUnexpectedEOF))
			}
			// The chunk's data ended exactly at the end of the body;
			// its missing CRLF is reported on the next Read.
			return n, nil
		}
		return n, c.fail(readErr(err))
	}
	return n, nil
}

func truncated(cause error) error { return s3err.IncompleteBody.Wrap(cause) }

func malformed(format string, args ...any) error {
	return s3err.InvalidRequest.WithMessage("The aws-chunked encoding of the request body is malformed.").
		Wrap(fmt.Errorf(format, args...))
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its "\n" or "\r\n". A last line
// without a newline is returned with complete false; io.EOF only comes with
// no bytes.
func (c *chunkedPayload) readLine() (line string, complete bool, err error) {
	b, err := c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(b) > maxChunkLine {
		return "", false, errLineTooLong
	}
	if err != nil && err != io.EOF {
		return "", false, err
	}
	if err == io.EOF && len(b) == 0 {
		return "", false, io.EOF
	}
	complete = err == nil
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r"), complete, nil
}

func (c *chunkedPayload) lineErr(err error, what string) error {
	switch {
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return truncated(fmt.Errorf("body ended before %s", what))
	case err == errLineTooLong:
		return malformed("%s longer than %d bytes", what, maxChunkLine)
	}
	return readErr(err)
}

// parseHexSize accepts 1 to 15 hex digits: no sign, no blanks, no value
// an int64 cannot hold.
func parseHexSize(s string) (int64, bool) {
	if s == "" || len(s) > 15 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		ch := s[i]
		var d int64
		switch {
		case '0' <= ch && ch <= '9':
			d = int64(ch - '0')
		case 'a' <= ch && ch <= 'f':
			d = int64(ch-'a') + 10
		case 'A' <= ch && ch <= 'F':
			d = int64(ch-'A') + 10
		default:
			return 0, false
		}
		n = n<<4 | d
	}
	return n, true
}

// nextChunk reads a chunk header; last reports the final, empty chunk
// (whose signature it has then checked).
func (c *chunkedPayload) nextChunk() (last bool, err error) {
	line, complete, err := c.readLine()
	if err == nil && !complete {
		// A chunk header is always followed by data or a CRLF.
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return false, c.lineErr(err, "chunk header")
	}
	sizeStr, ext, _ := strings.Cut(line, ";")
	size, ok := parseHexSize(sizeStr)
	if !ok {
		return false, malformed("bad chunk size %q", sizeStr)
	}
	if c.signed {
		sig := ""
		for e := range strings.SplitSeq(ext, ";") {
			if v, ok := strings.CutPrefix(e, "chunk-signature="); ok {
				sig = v
			}
		}
		if sig == "" {
			return false, s3err.SignatureDoesNotMatch.Wrap(errors.New("chunk without chunk-signature"))
		}
		c.chunkSig = sig
	}
	if c.declared >= 0 && size > c.declared-c.decoded {
		return false, truncated(fmt.Errorf("chunks exceed x-amz-decoded-content-length %d", c.declared))
	}
	if size == 0 {
		if c.signed {
			c.h.Reset()
			if err := c.checkChunkSignature(); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	if c.signed && c.prevSize >= 0 && c.prevSize < minChunkSize {
		// S3 names the offending chunk (1-based) and its size.
		return false, s3err.InvalidChunkSizeError.With(
			s3err.Field{Name: "Chunk", Value: strconv.Itoa(c.chunks)},
			s3err.Field{Name: "BadChunkSize", Value: strconv.FormatInt(c.prevSize, 10)},
		)
	}
	c.prevSize = size
	c.chunks++
	c.remaining = size
	c.inChunk = true
	if c.signed {
		c.h.Reset()
	}
	return false, nil
}

// endChunk checks the CRLF after a chunk's data and the chunk's signature.
func (c *chunkedPayload) endChunk() error {
	var crlf [2]byte
	if _, err := io.ReadFull(c.br, crlf[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return truncated(fmt.Errorf("body ended after chunk data"))
		}
		return readErr(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return malformed("chunk data not followed by CRLF")
	}
	c.inChunk = false
	if c.signed {
		return c.checkChunkSignature()
	}
	return nil
}

// checkChunkSignature verifies the current chunk (hash in c.h) against its
// signature and advances the chain.
func (c *chunkedPayload) checkChunkSignature() error {
	var sum [sha256.Size]byte
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.amzDate + "\n" + c.scope + "\n" + c.prevSig + "\n" +
		emptySHA256 + "\n" + hex.EncodeToString(c.h.Sum(sum[:0]))
	if !c.key.matchesString(sts, c.chunkSig) {
		return s3err.SignatureDoesNotMatch.With(
			s3err.Field{Name: "StringToSign", Value: sts},
			s3err.Field{Name: "SignatureProvided", Value: c.chunkSig},
		)
	}
	c.prevSig = c.chunkSig
	return nil
}

// finish reads what follows the final chunk and runs the end-of-body checks.
func (c *chunkedPayload) finish() error {
	if c.declared >= 0 && c.decoded != c.declared {
		return truncated(fmt.Errorf("decoded %d bytes, x-amz-decoded-content-length %d", c.decoded, c.declared))
	}
	if !c.trailers {
		line, complete, err := c.readLine()
		if err == nil && !complete && line == "" {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return c.lineErr(err, "final CRLF")
		}
		if line != "" {
			return malformed("data after the final chunk")
		}
		return nil
	}
	return c.readTrailers()
}

// readTrailers reads trailer lines to the end of the body. Clients differ
// in line endings ("\r\n", or "\n" then a blank "\r\n"), so blank lines are
// skipped and both endings accepted; the signed form of the trailers is
// always "name:value\n" per header, lower-case names, in the order sent.
func (c *chunkedPayload) readTrailers() error {
	var canon strings.Builder
	sig, lines, size := "", 0, 0
	c.trailer = http.Header{}
	for {
		// The last trailer line may end at the end of the body without
		// a newline; nothing is lost by accepting it.
		line, _, err := c.readLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			if err == errLineTooLong {
				return ErrMalformedTrailer.Wrap(err)
			}
			return readErr(err)
		}
		if line == "" {
			continue
		}
		lines++
		size += len(line)
		if lines > maxTrailerLines || size > maxTrailerBytes {
			return ErrMalformedTrailer.Wrap(errors.New("too many trailing headers"))
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			return ErrMalformedTrailer.Wrap(fmt.Errorf("trailer line without colon"))
		}
		name, val = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(val)
		if name == "" {
			return ErrMalformedTrailer.Wrap(fmt.Errorf("trailer without a name"))
		}
		if name == "x-amz-trailer-signature" {
			if sig != "" {
				return ErrMalformedTrailer.Wrap(errors.New("two trailer signatures"))
			}
			sig = val
			continue
		}
		if sig != "" && c.signed {
			return ErrMalformedTrailer.Wrap(errors.New("trailer after the trailer signature"))
		}
		c.trailer.Add(name, val)
		canon.WriteString(name)
		canon.WriteByte(':')
		canon.WriteString(val)
		canon.WriteByte('\n')
	}
	if c.signed {
		sum := sha256.Sum256([]byte(canon.String()))
		sts := "AWS4-HMAC-SHA256-TRAILER\n" + c.amzDate + "\n" + c.scope + "\n" + c.prevSig + "\n" + hex.EncodeToString(sum[:])
		if sig == "" || !c.key.matchesString(sts, sig) {
			return s3err.SignatureDoesNotMatch.With(
				s3err.Field{Name: "StringToSign", Value: sts},
				s3err.Field{Name: "SignatureProvided", Value: sig},
			)
		}
	}
	for _, name := range c.expect {
		if c.trailer.Get(name) == "" {
			return ErrMalformedTrailer.Wrap(fmt.Errorf("declared trailer %s missing", name))
		}
	}
	return nil
}
