package boltmeta

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"nfyio.dev/storage/internal/storage"
)

func checkKey(key string) error {
	if key == "" {
		return errors.New("boltmeta: empty object key")
	}
	if len(key) > bolt.MaxKeySize {
		return fmt.Errorf("boltmeta: object key of %d bytes is too long", len(key))
	}
	return nil
}

func getObject(objects *bolt.Bucket, bucket, key string) (*storage.Object, error) {
	v := objects.Get([]byte(key))
	if v == nil {
		return nil, nil
	}
	o, err := decodeObject(bucket, []byte(key), v)
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// PutObject stores o and returns the record it replaced.
func (d *DB) PutObject(ctx context.Context, o storage.Object, check storage.PutCheck) (*storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKey(o.Key); err != nil {
		return nil, err
	}
	// Encoded once, outside the transaction: the group commit may run the
	// function more than once and bbolt keeps the slice until commit.
	rec := appendObject(nil, &o)
	var replaced *storage.Object
	err := d.c.update(func(tx *bolt.Tx) error {
		replaced = nil
		data, err := dataOf(tx, o.Bucket)
		if err != nil {
			return err
		}
		old, err := getObject(data.objects, o.Bucket, o.Key)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(old); err != nil {
				return err
			}
		}
		replaced = old
		return data.objects.Put([]byte(o.Key), rec)
	})
	if err != nil {
		return nil, err
	}
	return replaced, nil
}

// GetObject returns a record; ErrObjectNotFound if there is none.
func (d *DB) GetObject(ctx context.Context, bucket, key string) (storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return storage.Object{}, err
	}
	var o *storage.Object
	err := d.db.View(func(tx *bolt.Tx) error {
		data, err := dataOf(tx, bucket)
		if err != nil {
			return err
		}
		o, err = getObject(data.objects, bucket, key)
		return err
	})
	if err != nil {
		return storage.Object{}, err
	}
	if o == nil {
		return storage.Object{}, fmt.Errorf("object %q/%q: %w", bucket, key, storage.ErrObjectNotFound)
	}
	return *o, nil
}

// DeleteObject removes a record and returns it.
func (d *DB) DeleteObject(ctx context.Context, bucket, key string, check storage.PutCheck) (*storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var deleted *storage.Object
	err := d.c.update(func(tx *bolt.Tx) error {
		deleted = nil
		data, err := dataOf(tx, bucket)
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
		if old == nil {
			return fmt.Errorf("object %q/%q: %w", bucket, key, storage.ErrObjectNotFound)
		}
		deleted = old
		return data.objects.Delete([]byte(key))
	})
	if err != nil {
		return nil, err
	}
	return deleted, nil
}

// successor returns the smallest byte string greater than every string
// that starts with p, or nil when there is none (p is all 0xFF). Seeking to
// it skips a whole common prefix without reading its keys.
func successor(p []byte) []byte {
	s := bytes.Clone(p)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] < 0xff {
			s[i]++
			return s[:i+1]
		}
	}
	return nil
}

// ListObjects returns a page of records in byte order of their keys. With
// a delimiter, the keys under one common prefix are skipped with one cursor
// seek, so a page costs O(MaxKeys) seeks however many keys each prefix holds.
func (d *DB) ListObjects(ctx context.Context, bucket string, opts storage.ListOptions) (storage.ListResult, error) {
	if err := ctx.Err(); err != nil {
		return storage.ListResult{}, err
	}
	var res storage.ListResult
	err := d.db.View(func(tx *bolt.Tx) error {
		data, err := dataOf(tx, bucket)
		if err != nil {
			return err
		}
		res, err = listObjects(data.objects.Cursor(), bucket, opts)
		return err
	})
	return res, err
}

func listObjects(c *bolt.Cursor, bucket string, opts storage.ListOptions) (storage.ListResult, error) {
	var res storage.ListResult
	prefix, delim, after := []byte(opts.Prefix), []byte(opts.Delimiter), []byte(opts.After)
	limit := max(opts.MaxKeys, 0)

	var k, v []byte
	if bytes.Compare(after, prefix) >= 0 {
		k, v = c.Seek(after)
		if k != nil && bytes.Equal(k, after) {
			k, v = c.Next()
		}
	} else {
		k, v = c.Seek(prefix)
	}
	n := 0
	for k != nil && bytes.HasPrefix(k, prefix) {
		if len(delim) > 0 {
			if i := bytes.Index(k[len(prefix):], delim); i >= 0 {
				cp := k[:len(prefix)+i+len(delim)]
				// A common prefix not after After was listed on an earlier
				// page (After is a key inside it or the prefix itself).
				if bytes.Compare(cp, after) > 0 {
					if n == limit {
						res.IsTruncated = true
						break
					}
					res.CommonPrefixes = append(res.CommonPrefixes, string(cp))
					res.NextAfter = string(cp)
					n++
				}
				next := successor(cp)
				if next == nil {
					break
				}
				k, v = c.Seek(next)
				continue
			}
		}
		if n == limit {
			res.IsTruncated = true
			break
		}
		o, err := decodeObject(bucket, k, v)
		if err != nil {
			return storage.ListResult{}, err
		}
		res.Objects = append(res.Objects, o)
		res.NextAfter = o.Key
		n++
		k, v = c.Next()
	}
	return res, nil
}
