package boltmeta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"nfyio.dev/storage/internal/storage"
)

// Object, part and upload records are read and written on every request, so
// they use a hand-written binary encoding (BenchmarkCodec compares it with
// encoding/json: several times faster and about half the size). Each record
// starts with a version byte; a later version appends fields at the end and
// its decoder reads them only when the record's version has them, so old
// records stay readable. Bucket and access-key records change rarely and
// are read rarely; they are JSON, which tolerates added fields by itself.
//
// Bucket and Key are not stored in object records: they are the bbolt
// bucket and key the record lives under.

const (
	objectV1 = 1
	partV1   = 1
	uploadV1 = 1
)

var errCorrupt = errors.New("corrupt record")

type encoder struct{ b []byte }

func (e *encoder) byte(v byte)      { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }

// optBytes keeps nil and empty apart: 0 is nil, n+1 is n bytes.
func (e *encoder) optBytes(p []byte) {
	if p == nil {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(len(p)) + 1)
	e.b = append(e.b, p...)
}

// time stores seconds and nanoseconds since the Unix epoch; the zero time
// round-trips to a time for which IsZero is true.
func (e *encoder) time(t time.Time) {
	e.varint(t.Unix())
	e.uvarint(uint64(t.Nanosecond()))
}

func (e *encoder) checksum(c *storage.Checksum) {
	if c == nil {
		e.byte(0)
		return
	}
	e.byte(1)
	e.str(c.Algorithm)
	e.str(c.Value)
	e.str(c.Type)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a collection length and refuses one that cannot fit in the
// remaining bytes, so a corrupt record cannot make us allocate wildly.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) raw(n int) []byte {
	if n > len(d.b) {
		d.fail()
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// str copies: bbolt's memory is only valid inside the transaction.
func (d *decoder) str() string { return string(d.raw(d.count())) }

func (d *decoder) optBytes() []byte {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	if n-1 > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	return slices.Clone(d.raw(int(n - 1)))
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) checksum() *storage.Checksum {
	switch d.byte() {
	case 0:
		return nil
	case 1:
		return &storage.Checksum{Algorithm: d.str(), Value: d.str(), Type: d.str()}
	default:
		d.fail()
		return nil
	}
}

func (d *decoder) version(max byte) byte {
	v := d.byte()
	if d.err == nil && (v == 0 || v > max) {
		d.err = fmt.Errorf("%w: version %d is newer than this program (%d)", errCorrupt, v, max)
	}
	return v
}

func appendObject(b []byte, o *storage.Object) []byte {
	e := encoder{b}
	e.byte(objectV1)
	e.objectBody(o)
	return e.b
}

func (e *encoder) objectBody(o *storage.Object) {
	e.varint(o.Size)
	e.str(o.ETag)
	e.time(o.LastModified)
	e.str(o.ContentType)
	e.str(o.ContentEncoding)
	e.str(o.ContentDisposition)
	e.str(o.ContentLanguage)
	e.str(o.CacheControl)
	e.str(o.Expires)
	e.uvarint(uint64(len(o.UserMeta)))
	// Sorted so equal records encode to equal bytes.
	for _, k := range slices.Sorted(maps.Keys(o.UserMeta)) {
		e.str(k)
		e.str(o.UserMeta[k])
	}
	e.checksum(o.Checksum)
	e.uvarint(uint64(len(o.Parts)))
	for _, p := range o.Parts {
		e.varint(int64(p.Number))
		e.varint(p.Size)
		e.str(p.ETag)
		e.str(p.Checksum)
	}
	e.uvarint(uint64(len(o.Segments)))
	for _, s := range o.Segments {
		e.str(s.Blob)
		e.varint(s.Size)
	}
	e.optBytes(o.Inline)
}

func decodeObject(bucket string, key []byte, v []byte) (storage.Object, error) {
	d := decoder{b: v}
	d.version(objectV1)
	o := d.objectBody()
	if d.err != nil {
		return storage.Object{}, fmt.Errorf("boltmeta: object %q/%q: %w", bucket, key, d.err)
	}
	o.Bucket, o.Key = bucket, string(key)
	return o, nil
}

func (d *decoder) objectBody() storage.Object {
	var o storage.Object
	o.Size = d.varint()
	o.ETag = d.str()
	o.LastModified = d.time()
	o.ContentType = d.str()
	o.ContentEncoding = d.str()
	o.ContentDisposition = d.str()
	o.ContentLanguage = d.str()
	o.CacheControl = d.str()
	o.Expires = d.str()
	if n := d.count(); n > 0 {
		o.UserMeta = make(map[string]string, n)
		for range n {
			k := d.str()
			o.UserMeta[k] = d.str()
		}
	}
	o.Checksum = d.checksum()
	if n := d.count(); n > 0 {
		o.Parts = make([]storage.PartInfo, n)
		for i := range o.Parts {
			o.Parts[i] = storage.PartInfo{Number: int(d.varint()), Size: d.varint(), ETag: d.str(), Checksum: d.str()}
		}
	}
	if n := d.count(); n > 0 {
		o.Segments = make([]storage.Segment, n)
		for i := range o.Segments {
			o.Segments[i] = storage.Segment{Blob: d.str(), Size: d.varint()}
		}
	}
	o.Inline = d.optBytes()
	return o
}

func appendPart(b []byte, p *storage.Part) []byte {
	e := encoder{b}
	e.byte(partV1)
	e.varint(int64(p.Number))
	e.varint(p.Size)
	e.str(p.ETag)
	e.time(p.LastModified)
	e.checksum(p.Checksum)
	e.str(p.Segment.Blob)
	e.varint(p.Segment.Size)
	return e.b
}

func decodePart(v []byte) (storage.Part, error) {
	d := decoder{b: v}
	d.version(partV1)
	p := storage.Part{
		Number:       int(d.varint()),
		Size:         d.varint(),
		ETag:         d.str(),
		LastModified: d.time(),
		Checksum:     d.checksum(),
		Segment:      storage.Segment{Blob: d.str(), Size: d.varint()},
	}
	if d.err != nil {
		return storage.Part{}, fmt.Errorf("boltmeta: part record: %w", d.err)
	}
	return p, nil
}

func appendUpload(b []byte, u *storage.Upload) []byte {
	e := encoder{b}
	e.byte(uploadV1)
	e.str(u.Key)
	e.str(u.ID)
	e.time(u.Initiated)
	e.objectBody(&u.Template)
	return e.b
}

func decodeUpload(bucket string, v []byte) (storage.Upload, error) {
	d := decoder{b: v}
	d.version(uploadV1)
	u := storage.Upload{Bucket: bucket, Key: d.str(), ID: d.str(), Initiated: d.time()}
	u.Template = d.objectBody()
	if d.err != nil {
		return storage.Upload{}, fmt.Errorf("boltmeta: upload record in %q: %w", bucket, d.err)
	}
	u.Template.Bucket, u.Template.Key = bucket, u.Key
	return u, nil
}
