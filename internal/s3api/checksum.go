package s3api

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"net/http"
	"strings"

	"nfyio.dev/storage/internal/s3err"
)

// checksumAlgorithms are S3's flexible checksum algorithms, in the order
// S3 documents them.
var checksumAlgorithms = []string{"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"}

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	// CRC-64/NVME: reflected polynomial 0x9a6c9329ac4bc9b5, init and
	// final xor all ones, which is what hash/crc64 does.
	nvmeTable = crc64.MakeTable(0x9a6c9329ac4bc9b5)
)

func newChecksumHash(alg string) hash.Hash {
	switch alg {
	case "CRC32":
		return crc32.NewIEEE()
	case "CRC32C":
		return crc32.New(castagnoli)
	case "CRC64NVME":
		return crc64.New(nvmeTable)
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	}
	return nil
}

func checksumHeader(alg string) string { return "X-Amz-Checksum-" + alg }

// digestLen is the decoded length of a checksum value of alg.
func digestLen(alg string) int {
	switch alg {
	case "CRC32", "CRC32C":
		return 4
	case "CRC64NVME":
		return 8
	case "SHA1":
		return 20
	case "SHA256":
		return 32
	}
	return 0
}

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
	for _, alg := range checksumAlgorithms {
		v := h.Get(checksumHeader(alg))
		if v == "" {
			continue
		}
		if c.alg != "" {
			return c, s3err.InvalidRequest.WithMessage("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != digestLen(alg) {
			return c, s3err.InvalidRequest.WithMessage("Value for x-amz-checksum-" + strings.ToLower(alg) + " header is invalid.")
		}
		c.alg, c.value = alg, v
	}
	if t := h.Get("X-Amz-Trailer"); t != "" {
		name := strings.ToLower(strings.TrimSpace(t))
		alg, ok := strings.CutPrefix(name, "x-amz-checksum-")
		alg = strings.ToUpper(alg)
		if !ok || newChecksumHash(alg) == nil {
			return c, s3err.InvalidRequest.WithMessage("The value specified in the x-amz-trailer header is not supported")
		}
		if c.alg != "" && c.alg != alg {
			return c, s3err.InvalidRequest.WithMessage("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		c.alg, c.trailer = alg, true
	}
	if sdk := strings.ToUpper(h.Get("X-Amz-Sdk-Checksum-Algorithm")); sdk != "" && c.alg == "" {
		if newChecksumHash(sdk) == nil {
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
	md5 hash.Hash
	sum hash.Hash
	n   int64
	alg string
	buf [64]byte
}

func newBodyHasher(alg string) *bodyHasher {
	h := &bodyHasher{md5: md5.New(), alg: alg}
	if alg != "" {
		h.sum = newChecksumHash(alg)
	}
	return h
}

func (h *bodyHasher) Write(p []byte) (int, error) {
	h.md5.Write(p)
	if h.sum != nil {
		h.sum.Write(p)
	}
	h.n += int64(len(p))
	return len(p), nil
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

// compositeChecksum is the checksum of the concatenated part checksums,
// suffixed with the part count, as S3 computes for multipart objects.
func compositeChecksum(alg string, parts []string) (string, error) {
	hsh := newChecksumHash(alg)
	for _, p := range parts {
		b, err := base64.StdEncoding.DecodeString(p)
		if err != nil {
			return "", err
		}
		hsh.Write(b)
	}
	return base64.StdEncoding.EncodeToString(hsh.Sum(nil)) + "-" + itoa(len(parts)), nil
}

// combineCRC joins the full-object CRCs of consecutive parts into the CRC of
// their concatenation, for FULL_OBJECT multipart checksums.
func combineCRC(alg string, parts []string, sizes []int64) (string, error) {
	var total uint64
	for i, p := range parts {
		b, err := base64.StdEncoding.DecodeString(p)
		if err != nil {
			return "", err
		}
		var v uint64
		switch len(b) {
		case 4:
			v = uint64(binary.BigEndian.Uint32(b))
		case 8:
			v = binary.BigEndian.Uint64(b)
		}
		if i == 0 {
			total = v
			continue
		}
		total = crcCombine(alg, total, v, sizes[i])
	}
	var out []byte
	if alg == "CRC64NVME" {
		out = binary.BigEndian.AppendUint64(nil, total)
	} else {
		out = binary.BigEndian.AppendUint32(nil, uint32(total))
	}
	return base64.StdEncoding.EncodeToString(out), nil
}
