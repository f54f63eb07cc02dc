package s3api

import (
	"crypto/md5"
	"encoding/base64"
	"hash"
	"net/http"
	"strings"

	"nfyio.dev/storage/internal/checksum"
	"nfyio.dev/storage/internal/multimd5"
	"nfyio.dev/storage/internal/s3err"
)

func checksumHeader(alg string) string { return "X-Amz-Checksum-" + alg }

// checksumRequest is what a request says about its body's checksums.
type checksumRequest struct {
	contentMD5 []byte // nil when absent
	alg        string // "" when no flexible checksum was asked for
	value      string // expected base64 value from a header; "" when it comes in a trailer or not at all
	trailer    bool   // the value arrives in a trailer
}

// parseChecksumRequest reads Content-MD5, x-amz-checksum-*, x-amz-sdk-checksum-algorithm
// and x-amz-trailer. Query parameters are never read: the JavaScript presigner
// hoists x-amz-checksum-crc32 of an empty body into every URL, and S3 ignores it.
func parseChecksumRequest(h http.Header) (checksumRequest, error) {
	var c checksumRequest
	if v, ok := h["Content-Md5"]; ok {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v[0]))
		if err != nil || len(b) != md5.Size {
			return c, s3err.InvalidDigest
		}
		c.contentMD5 = b
	}
	for _, alg := range checksum.Algorithms {
		v := h.Get(checksumHeader(alg))
		if v == "" {
			continue
		}
		if c.alg != "" {
			return c, s3err.InvalidRequest.WithMessage("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != checksum.Size(alg) {
			return c, s3err.InvalidRequest.WithMessage("Value for x-amz-checksum-" + strings.ToLower(alg) + " header is invalid.")
		}
		c.alg, c.value = alg, v
	}
	if t := h.Get("X-Amz-Trailer"); t != "" {
		name := strings.ToLower(strings.TrimSpace(t))
		alg, ok := strings.CutPrefix(name, "x-amz-checksum-")
		alg = strings.ToUpper(alg)
		if !ok || checksum.New(alg) == nil {
			return c, s3err.InvalidRequest.WithMessage("The value specified in the x-amz-trailer header is not supported")
		}
		if c.alg != "" && c.alg != alg {
			return c, s3err.InvalidRequest.WithMessage("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		c.alg, c.trailer = alg, true
	}
	if sdk := strings.ToUpper(h.Get("X-Amz-Sdk-Checksum-Algorithm")); sdk != "" && c.alg == "" {
		if checksum.New(sdk) == nil {
			return c, s3err.InvalidRequest.WithMessage("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
		}
		// The SDK named an algorithm without sending a value: compute and
		// store it so GetObject can return it.
		c.alg = sdk
	}
	return c, nil
}

// bodyHasher computes MD5 and at most one flexible checksum in one pass.
type bodyHasher struct {
	md5 multimd5.Hash
	sum hash.Hash
	n   int64
	alg string
	buf [64]byte
}

func newBodyHasher(alg string) *bodyHasher {
	h := &bodyHasher{md5: multimd5.New(), alg: alg}
	if alg != "" {
		h.sum = checksum.New(alg)
	}
	return h
}

func (h *bodyHasher) Write(p []byte) (int, error) {
	h.start(p)
	h.md5.Wait()
	return len(p), nil
}

// start is Write with the MD5 left to finish in the background: p must stay
// unchanged until the next start, Write or md5Sum.
func (h *bodyHasher) start(p []byte) {
	h.md5.Start(p)
	if h.sum != nil {
		h.sum.Write(p)
	}
	h.n += int64(len(p))
}

// queue is start without waiting for the MD5 of what was started or
// queued before: p and those must all stay unchanged until h.md5.Wait.
func (h *bodyHasher) queue(p []byte) {
	h.md5.Queue(p)
	if h.sum != nil {
		h.sum.Write(p)
	}
	h.n += int64(len(p))
}

func (h *bodyHasher) md5Sum() []byte { return h.md5.Sum(h.buf[:0]) }

func (h *bodyHasher) checksum() string {
	if h.sum == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(h.sum.Sum(nil))
}

// verify checks the digests the client declared once the body is read.
// trailer holds the trailing headers of aws-chunked bodies.
func (c checksumRequest) verify(h *bodyHasher, trailer http.Header) (md5sum []byte, checksum string, err error) {
	md5sum = h.md5Sum()
	if c.contentMD5 != nil && string(c.contentMD5) != string(md5sum) {
		return nil, "", s3err.BadDigest
	}
	if c.alg == "" {
		return md5sum, "", nil
	}
	checksum = h.checksum()
	want := c.value
	if c.trailer {
		want = trailer.Get(checksumHeader(c.alg))
		if want == "" {
			return nil, "", s3err.InvalidRequest.WithMessage("x-amz-trailer header was present but trailer was missing: " + strings.ToLower(checksumHeader(c.alg)))
		}
	}
	if want != "" && want != checksum {
		return nil, "", s3err.BadDigest.WithMessage("The " + strings.ToLower(checksumHeader(c.alg)) + " you specified did not match the calculated checksum.")
	}
	return md5sum, checksum, nil
}
