package boltmeta

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"nfyio.dev/storage/internal/storage"
)

// escapeKey encodes an object key so that a terminator can follow it while
// byte order is kept: 0x00 becomes 0x00 0xFF, and keyTerm (0x00 0x01) sorts
// before any continuation of the key. escapeKey(p) is a prefix of
// escapeKey(k) exactly when p is a prefix of k.
func escapeKey(dst []byte, key string) []byte {
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			dst = append(dst, 0, 0xff)
		} else {
			dst = append(dst, key[i])
		}
	}
	return dst
}

var keyTerm = []byte{0, 1}

// uploadSortKey orders uploads by key, then initiation time, then ID.
func uploadSortKey(key string, initiated time.Time, id string) []byte {
	b := escapeKey(make([]byte, 0, len(key)+len(id)+16), key)
	b = append(b, keyTerm...)
	// Flipping the sign bit makes signed seconds sort as unsigned bytes.
	b = binary.BigEndian.AppendUint64(b, uint64(initiated.Unix())^(1<<63))
	b = binary.BigEndian.AppendUint32(b, uint32(initiated.Nanosecond()))
	return append(b, id...)
}

// partPrefix is length-prefixed so that no upload's prefix is a prefix of
// another's.
func partPrefix(uploadID string) []byte {
	b := binary.AppendUvarint(make([]byte, 0, len(uploadID)+8), uint64(len(uploadID)))
	return append(b, uploadID...)
}

func partKey(uploadID string, number int) []byte {
	return binary.BigEndian.AppendUint32(partPrefix(uploadID), uint32(number))
}

func uploadNotFound(bucket, key, id string) error {
	return fmt.Errorf("upload %q of %q/%q: %w", id, bucket, key, storage.ErrUploadNotFound)
}

// getUpload finds an upload of bucket/key by ID and returns it with its
// sort key.
func getUpload(data bucketData, bucket, key, id string) (storage.Upload, []byte, error) {
	if id == "" {
		return storage.Upload{}, nil, uploadNotFound(bucket, key, id)
	}
	sk := data.uploadIDs.Get([]byte(id))
	if sk == nil {
		return storage.Upload{}, nil, uploadNotFound(bucket, key, id)
	}
	v := data.uploads.Get(sk)
	if v == nil {
		return storage.Upload{}, nil, fmt.Errorf("boltmeta: upload %q: index points at no record: %w", id, errCorrupt)
	}
	u, err := decodeUpload(bucket, v)
	if err != nil {
		return storage.Upload{}, nil, err
	}
	if u.Key != key {
		return storage.Upload{}, nil, uploadNotFound(bucket, key, id)
	}
	return u, bytes.Clone(sk), nil
}

// CreateUpload records a new multipart upload.
func (d *DB) CreateUpload(ctx context.Context, u storage.Upload) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey(u.Key); err != nil {
		return err
	}
	if u.ID == "" {
		return errors.New("boltmeta: empty upload id")
	}
	sk := uploadSortKey(u.Key, u.Initiated, u.ID)
	rec := appendUpload(nil, &u)
	return d.c.update(func(tx *bolt.Tx) error {
		data, err := dataOf(tx, u.Bucket)
		if err != nil {
			return err
		}
		if data.uploadIDs.Get([]byte(u.ID)) != nil {
			return fmt.Errorf("boltmeta: upload id %q already exists", u.ID)
		}
		if err := data.uploads.Put(sk, rec); err != nil {
			return err
		}
		return data.uploadIDs.Put([]byte(u.ID), sk)
	})
}

// GetUpload returns an upload; ErrUploadNotFound unless it exists for key.
func (d *DB) GetUpload(ctx context.Context, bucket, key, uploadID string) (storage.Upload, error) {
	if err := ctx.Err(); err != nil {
		return storage.Upload{}, err
	}
	var u storage.Upload
	err := d.db.View(func(tx *bolt.Tx) error {
		data, err := dataOf(tx, bucket)
		if err != nil {
			return err
		}
		u, _, err = getUpload(data, bucket, key, uploadID)
		return err
	})
	return u, err
}

// PutPart records a part and returns the one it replaced.
func (d *DB) PutPart(ctx context.Context, bucket, key, uploadID string, p storage.Part) (*storage.Part, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.Number < 1 || p.Number > 1<<31 {
		return nil, fmt.Errorf("boltmeta: part number %d out of range", p.Number)
	}
	pk := partKey(uploadID, p.Number)
	rec := appendPart(nil, &p)
	var replaced *storage.Part
	err := d.c.update(func(tx *bolt.Tx) error {
		replaced = nil
		data, err := dataOf(tx, bucket)
		if err != nil {
			return err
		}
		if _, _, err := getUpload(data, bucket, key, uploadID); err != nil {
			return err
		}
		if v := data.parts.Get(pk); v != nil {
			old, err := decodePart(v)
			if err != nil {
				return err
			}
			replaced = &old
		}
		return data.parts.Put(pk, rec)
	})
	if err != nil {
		return nil, err
	}
	return replaced, nil
}

// ListParts returns up to limit parts numbered above afterPart.
func (d *DB) ListParts(ctx context.Context, bucket, key, uploadID string, afterPart, limit int) ([]storage.Part, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	afterPart = min(max(afterPart, 0), 1<<31)
	var (
		parts []storage.Part
		more  bool
	)
	err := d.db.View(func(tx *bolt.Tx) error {
		data, err := dataOf(tx, bucket)
		if err != nil {
			return err
		}
		if _, _, err := getUpload(data, bucket, key, uploadID); err != nil {
			return err
		}
		prefix := partPrefix(uploadID)
		c := data.parts.Cursor()
		for k, v := c.Seek(partKey(uploadID, afterPart+1)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(parts) >= limit {
				more = true
				break
			}
			p, err := decodePart(v)
			if err != nil {
				return err
			}
			parts = append(parts, p)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return parts, more, nil
}

// takeParts deletes an upload's parts and returns them in number order.
func takeParts(data bucketData, uploadID string) ([]storage.Part, error) {
	prefix := partPrefix(uploadID)
	var (
		parts []storage.Part
		keys  [][]byte
	)
	c := data.parts.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		p, err := decodePart(v)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
		keys = append(keys, k)
	}
	// Deleted after the walk: deleting under a moving cursor skips keys.
	for _, k := range keys {
		if err := data.parts.Delete(k); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

func removeUpload(data bucketData, uploadID string, sk []byte) ([]storage.Part, error) {
	parts, err := takeParts(data, uploadID)
	if err != nil {
		return nil, err
	}
	if err := data.uploads.Delete(sk); err != nil {
		return nil, err
	}
	if err := data.uploadIDs.Delete([]byte(uploadID)); err != nil {
		return nil, err
	}
	return parts, nil
}

// CompleteUpload removes the upload and stores o in one transaction.
func (d *DB) CompleteUpload(ctx context.Context, bucket, key, uploadID string, o storage.Object, check storage.PutCheck) (*storage.Object, []storage.Part, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	o.Bucket, o.Key = bucket, key
	rec := appendObject(nil, &o)
	used := make(map[string]bool, len(o.Segments))
	for _, s := range o.Segments {
		used[s.Blob] = true
	}
	var (
		replaced *storage.Object
		unused   []storage.Part
	)
	err := d.c.update(func(tx *bolt.Tx) error {
		replaced, unused = nil, nil
		data, err := dataOf(tx, bucket)
		if err != nil {
			return err
		}
		_, sk, err := getUpload(data, bucket, key, uploadID)
		if err != nil {
			return err
		}
		old, err := getObject(data.objects, bucket, key)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(old); err != nil {
				return err
			}
		}
		parts, err := removeUpload(data, uploadID, sk)
		if err != nil {
			return err
		}
		if err := checkSegments(o.Segments, parts); err != nil {
			return err
		}
		for _, p := range parts {
			if !used[p.Segment.Blob] {
				unused = append(unused, p)
			}
		}
		replaced = old
		return data.objects.Put([]byte(key), rec)
	})
	if err != nil {
		return nil, nil, err
	}
	return replaced, unused, nil
}

// checkSegments verifies that every segment is a current part's blob.
func checkSegments(segs []storage.Segment, parts []storage.Part) error {
	current := make(map[string]bool, len(parts))
	for _, p := range parts {
		current[p.Segment.Blob] = true
	}
	for _, s := range segs {
		if !current[s.Blob] {
			return storage.ErrPartChanged
		}
	}
	return nil
}

// AbortUpload removes the upload and returns its parts.
func (d *DB) AbortUpload(ctx context.Context, bucket, key, uploadID string) ([]storage.Part, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var parts []storage.Part
	err := d.c.update(func(tx *bolt.Tx) error {
		parts = nil
		data, err := dataOf(tx, bucket)
		if err != nil {
			return err
		}
		_, sk, err := getUpload(data, bucket, key, uploadID)
		if err != nil {
			return err
		}
		parts, err = removeUpload(data, uploadID, sk)
		return err
	})
	if err != nil {
		return nil, err
	}
	return parts, nil
}

// ListUploads returns a page of uploads ordered by key, then initiation
// time and ID. UploadIDMarker, with KeyMarker, continues after that upload;
// an ID that is not an upload of KeyMarker keeps KeyMarker's uploads whose
// IDs sort after it, as S3 describes the marker.
func (d *DB) ListUploads(ctx context.Context, bucket string, opts storage.ListUploadsOptions) (storage.ListUploadsResult, error) {
	if err := ctx.Err(); err != nil {
		return storage.ListUploadsResult{}, err
	}
	var res storage.ListUploadsResult
	err := d.db.View(func(tx *bolt.Tx) error {
		data, err := dataOf(tx, bucket)
		if err != nil {
			return err
		}
		res, err = listUploads(data, bucket, opts)
		return err
	})
	return res, err
}

func listUploads(data bucketData, bucket string, opts storage.ListUploadsOptions) (storage.ListUploadsResult, error) {
	var res storage.ListUploadsResult
	limit := max(opts.MaxUploads, 0)
	prefixEsc := escapeKey([]byte{}, opts.Prefix)
	km, um := opts.KeyMarker, opts.UploadIDMarker

	c := data.uploads.Cursor()
	start := prefixEsc
	var skipThrough []byte // start after this sort key
	filterID := false      // KeyMarker's uploads need ID > UploadIDMarker
	if km != "" && km >= opts.Prefix {
		kmEsc := append(escapeKey(nil, km), keyTerm...)
		switch sk := data.uploadIDs.Get([]byte(um)); {
		case um == "":
			if start = successor(kmEsc); start == nil {
				return res, nil // nothing sorts after KeyMarker
			}
		case sk != nil && bytes.HasPrefix(sk, kmEsc):
			start, skipThrough = sk, sk
		default:
			start, filterID = kmEsc, true
		}
	}
	k, v := c.Seek(start)
	if skipThrough != nil && k != nil && bytes.Equal(k, skipThrough) {
		k, v = c.Next()
	}
	n := 0
	for k != nil && bytes.HasPrefix(k, prefixEsc) {
		u, err := decodeUpload(bucket, v)
		if err != nil {
			return storage.ListUploadsResult{}, err
		}
		if opts.Delimiter != "" {
			if i := strings.Index(u.Key[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				cp := u.Key[:len(opts.Prefix)+i+len(opts.Delimiter)]
				if cp > km {
					if n == limit {
						res.IsTruncated = true
						break
					}
					res.CommonPrefixes = append(res.CommonPrefixes, cp)
					n++
				}
				next := successor(escapeKey(nil, cp))
				if next == nil {
					break
				}
				k, v = c.Seek(next)
				continue
			}
		}
		if filterID && u.Key == km && u.ID <= um {
			k, v = c.Next()
			continue
		}
		if n == limit {
			res.IsTruncated = true
			break
		}
		res.Uploads = append(res.Uploads, u)
		n++
		k, v = c.Next()
	}
	return res, nil
}
