package seaweedblob

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// refPrefix marks (and versions) a seaweedblob reference. Changing the
// encoding means a new prefix, because old references live on in metadata.
const refPrefix = "sw1:"

// maxChunks bounds what a reference may claim, so a corrupt or hostile
// reference cannot make decodeRef allocate without limit.
const maxChunks = 1 << 20

// chunk is one SeaweedFS file (a needle) holding a contiguous piece of a
// blob. Its file id is "volume,keycookie" in SeaweedFS's text form.
type chunk struct {
	volume uint32
	key    uint64
	cookie uint32
	size   int64
}

// fid returns the file id as SeaweedFS writes it: the volume id in decimal,
// a comma, then the needle key's big-endian bytes without leading zero bytes
// followed by the 4-byte cookie, all in hex.
func (c chunk) fid() string {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], c.key)
	binary.BigEndian.PutUint32(b[8:], c.cookie)
	i := 0
	for i < 7 && b[i] == 0 { // keep one key byte so the id stays parseable
		i++
	}
	return strconv.FormatUint(uint64(c.volume), 10) + "," + hex.EncodeToString(b[i:])
}

// parseFid parses a file id returned by the master's /dir/assign.
func parseFid(fid string) (chunk, error) {
	vol, rest, ok := strings.Cut(fid, ",")
	if !ok {
		return chunk{}, fmt.Errorf("file id %q: no comma", fid)
	}
	v, err := strconv.ParseUint(vol, 10, 32)
	if err != nil {
		return chunk{}, fmt.Errorf("file id %q: volume: %w", fid, err)
	}
	// Ids with a "_N" delta suffix come only from count>1 assigns, which
	// this package never asks for.
	if len(rest) <= 8 || len(rest) > 24 {
		return chunk{}, fmt.Errorf("file id %q: bad key and cookie length", fid)
	}
	k, err := strconv.ParseUint(rest[:len(rest)-8], 16, 64)
	if err != nil {
		return chunk{}, fmt.Errorf("file id %q: key: %w", fid, err)
	}
	c, err := strconv.ParseUint(rest[len(rest)-8:], 16, 32)
	if err != nil {
		return chunk{}, fmt.Errorf("file id %q: cookie: %w", fid, err)
	}
	return chunk{volume: uint32(v), key: k, cookie: uint32(c)}, nil
}

// encodeRef writes the chunk list compactly: "sw1:" and the unpadded
// URL-safe base64 of uvarint(count) then, per chunk, uvarint(volume),
// uvarint(key), the cookie as 4 big-endian bytes and uvarint(size). A chunk
// costs about 12 bytes against 30 or more as text, which matters because a
// 5 GiB blob of 8 MiB chunks has 640 of them and metadata stores the ref.
func encodeRef(chunks []chunk) string {
	buf := make([]byte, 0, binary.MaxVarintLen64+len(chunks)*(3*binary.MaxVarintLen64+4))
	buf = binary.AppendUvarint(buf, uint64(len(chunks)))
	for _, c := range chunks {
		buf = binary.AppendUvarint(buf, uint64(c.volume))
		buf = binary.AppendUvarint(buf, c.key)
		buf = binary.BigEndian.AppendUint32(buf, c.cookie)
		buf = binary.AppendUvarint(buf, uint64(c.size))
	}
	return refPrefix + base64.RawURLEncoding.EncodeToString(buf)
}

var errBadRef = errors.New("not a seaweedblob reference")

// decodeRef is the strict inverse of encodeRef: anything encodeRef does not
// write is rejected with errBadRef.
func decodeRef(ref string) ([]chunk, error) {
	payload, ok := strings.CutPrefix(ref, refPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: %q", errBadRef, abbrev(ref))
	}
	buf, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", errBadRef, abbrev(ref), err)
	}
	bad := func(what string) ([]chunk, error) {
		return nil, fmt.Errorf("%w: %q: %s", errBadRef, abbrev(ref), what)
	}
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(buf)
		if n <= 0 {
			return 0, false
		}
		buf = buf[n:]
		return v, true
	}
	n, ok := uvarint()
	// Each chunk takes at least 7 bytes, so a count above that bound is a lie.
	if !ok || n == 0 || n > maxChunks || n > uint64(len(buf))/7 {
		return bad("bad chunk count")
	}
	chunks := make([]chunk, 0, n)
	var total int64
	for range n {
		vol, ok1 := uvarint()
		key, ok2 := uvarint()
		if !ok1 || !ok2 || vol > math.MaxUint32 || len(buf) < 4 {
			return bad("truncated chunk")
		}
		cookie := binary.BigEndian.Uint32(buf)
		buf = buf[4:]
		size, ok := uvarint()
		if !ok || size > math.MaxUint32 || total > math.MaxInt64-int64(size) {
			return bad("bad chunk size")
		}
		total += int64(size)
		chunks = append(chunks, chunk{volume: uint32(vol), key: key, cookie: cookie, size: int64(size)})
	}
	if len(buf) != 0 {
		return bad("trailing bytes")
	}
	// One blob, one reference: base64 and varints both have spellings the
	// decoder accepts that encodeRef never writes, and a sweeper matches
	// references as strings.
	if encodeRef(chunks) != ref {
		return bad("not in canonical form")
	}
	return chunks, nil
}

// abbrev shortens a reference for error messages: a bad one may be long.
func abbrev(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
