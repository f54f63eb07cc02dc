package pgmeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

// maxCreateRaces bounds how often a writer that found no record, and then
// lost the INSERT to a concurrent creator, looks again. Each round means
// another transaction created and deleted the key in between; losing this
// many in a row is reported as a conflict for the client to retry.
const maxCreateRaces = 16

// objectCols is the column list every object query selects, in scanObject's
// order.
const objectCols = `key, size, etag, last_modified, content_type, content_encoding, content_disposition,
	content_language, cache_control, expires, user_meta, checksum, parts, segments, inline`

// PutObject stores o, replacing any record at its key, and returns the
// replaced record. check runs on the locked current record.
func (db *DB) PutObject(ctx context.Context, o storage.Object, check storage.PutCheck) (*storage.Object, error) {
	var replaced *storage.Object
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockBucket(ctx, tx, o.Bucket); err != nil {
			return err
		}
		var err error
		replaced, err = putObjectTx(ctx, tx, o, check)
		return err
	})
	if err != nil {
		return nil, err
	}
	return replaced, nil
}

// putObjectTx writes o in tx. When a record exists it is locked with SELECT
// ... FOR UPDATE before check sees it, so no other writer can change it until
// tx ends. When none exists there is no row to lock: the insert uses ON
// CONFLICT DO NOTHING, and if a concurrent transaction created the key first
// (the insert waits for it to commit) the loop starts over and check sees the
// winner's record. Two concurrent If-None-Match: * creates thus have exactly
// one winner.
func putObjectTx(ctx context.Context, tx pgx.Tx, o storage.Object, check storage.PutCheck) (*storage.Object, error) {
	cols, err := objectArgs(o)
	if err != nil {
		return nil, err
	}
	for range maxCreateRaces {
		old, err := selectObject(ctx, tx, o.Bucket, o.Key, true)
		if err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(old); err != nil {
				return nil, err
			}
		}
		if old != nil {
			_, err := tx.Exec(ctx, `UPDATE objects SET size = $3, etag = $4, last_modified = $5, content_type = $6,
				content_encoding = $7, content_disposition = $8, content_language = $9, cache_control = $10,
				expires = $11, user_meta = $12, checksum = $13, parts = $14, segments = $15, inline = $16
				WHERE bucket = $1 AND key = $2`, cols...)
			if err != nil {
				return nil, fmt.Errorf("pgmeta: update object %q/%q: %w", o.Bucket, o.Key, err)
			}
			return old, nil
		}
		tag, err := tx.Exec(ctx, `INSERT INTO objects (bucket, `+objectCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
			ON CONFLICT (bucket, key) DO NOTHING`, cols...)
		if err != nil {
			return nil, fmt.Errorf("pgmeta: insert object %q/%q: %w", o.Bucket, o.Key, err)
		}
		if tag.RowsAffected() == 1 {
			return nil, nil
		}
	}
	return nil, s3err.ConditionalRequestConflict.Wrap(fmt.Errorf("pgmeta: put object %q/%q: lost %d creation races", o.Bucket, o.Key, maxCreateRaces))
}

// GetObject returns the record at bucket/key.
func (db *DB) GetObject(ctx context.Context, bucket, key string) (storage.Object, error) {
	o, err := selectObject(ctx, db.pool, bucket, key, false)
	if err != nil {
		return storage.Object{}, err
	}
	if o == nil {
		// Tell a missing bucket from a missing key only on this rarer path.
		if err := bucketExists(ctx, db.pool, bucket); err != nil {
			return storage.Object{}, err
		}
		return storage.Object{}, fmt.Errorf("%w: %q/%q", storage.ErrObjectNotFound, bucket, key)
	}
	return *o, nil
}

// DeleteObject removes the record at bucket/key and returns it. check runs
// on the locked record, or on nil when there is none (it may then refuse
// with its own error; otherwise the result is ErrObjectNotFound).
func (db *DB) DeleteObject(ctx context.Context, bucket, key string, check storage.PutCheck) (*storage.Object, error) {
	var deleted *storage.Object
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockBucket(ctx, tx, bucket); err != nil {
			return err
		}
		old, err := selectObject(ctx, tx, bucket, key, true)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(old); err != nil {
				return err
			}
		}
		if old == nil {
			return fmt.Errorf("%w: %q/%q", storage.ErrObjectNotFound, bucket, key)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM objects WHERE bucket = $1 AND key = $2", bucket, kb(key)); err != nil {
			return fmt.Errorf("pgmeta: delete object %q/%q: %w", bucket, key, err)
		}
		deleted = old
		return nil
	})
	if err != nil {
		return nil, err
	}
	return deleted, nil
}

// selectObject reads one record (nil when absent), locking it when forUpdate.
func selectObject(ctx context.Context, q querier, bucket, key string, forUpdate bool) (*storage.Object, error) {
	sql := "SELECT " + objectCols + " FROM objects WHERE bucket = $1 AND key = $2"
	if forUpdate {
		sql += " FOR UPDATE"
	}
	o, err := scanObject(q.QueryRow(ctx, sql, bucket, kb(key)), bucket)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgmeta: read object %q/%q: %w", bucket, key, err)
	}
	return &o, nil
}

// objectArgs returns $1..$16 of the insert and update statements.
func objectArgs(o storage.Object) ([]any, error) {
	userMeta, err := jsonOrNull(len(o.UserMeta) > 0, o.UserMeta)
	if err != nil {
		return nil, fmt.Errorf("pgmeta: encode user metadata of %q: %w", o.Key, err)
	}
	checksum, err := jsonOrNull(o.Checksum != nil, o.Checksum)
	if err != nil {
		return nil, fmt.Errorf("pgmeta: encode checksum of %q: %w", o.Key, err)
	}
	parts, err := jsonOrNull(len(o.Parts) > 0, o.Parts)
	if err != nil {
		return nil, fmt.Errorf("pgmeta: encode parts of %q: %w", o.Key, err)
	}
	segments, err := jsonOrNull(len(o.Segments) > 0, o.Segments)
	if err != nil {
		return nil, fmt.Errorf("pgmeta: encode segments of %q: %w", o.Key, err)
	}
	return []any{
		o.Bucket, kb(o.Key), o.Size, o.ETag, o.LastModified, o.ContentType, o.ContentEncoding,
		o.ContentDisposition, o.ContentLanguage, o.CacheControl, o.Expires,
		userMeta, checksum, parts, segments, nilIfEmpty(o.Inline),
	}, nil
}

// jsonOrNull encodes v for a jsonb column, or SQL NULL when !present: empty
// collections and absent checksums are not stored.
func jsonOrNull(present bool, v any) ([]byte, error) {
	if !present {
		return nil, nil
	}
	return json.Marshal(v)
}

// scanObject reads objectCols plus any extra destinations.
func scanObject(row pgx.Row, bucket string, extra ...any) (storage.Object, error) {
	var (
		o                                   storage.Object
		key                                 []byte
		userMeta, checksum, parts, segments []byte
	)
	dest := append([]any{&key, &o.Size, &o.ETag, &o.LastModified, &o.ContentType, &o.ContentEncoding,
		&o.ContentDisposition, &o.ContentLanguage, &o.CacheControl, &o.Expires,
		&userMeta, &checksum, &parts, &segments, &o.Inline}, extra...)
	if err := row.Scan(dest...); err != nil {
		return storage.Object{}, err
	}
	o.Bucket = bucket
	o.Key = string(key)
	o.LastModified = o.LastModified.UTC()
	if len(o.Inline) == 0 {
		o.Inline = nil
	}
	for _, f := range []struct {
		raw  []byte
		into any
		what string
	}{
		{userMeta, &o.UserMeta, "user metadata"},
		{checksum, &o.Checksum, "checksum"},
		{parts, &o.Parts, "parts"},
		{segments, &o.Segments, "segments"},
	} {
		if len(f.raw) == 0 {
			continue
		}
		if err := json.Unmarshal(f.raw, f.into); err != nil {
			return storage.Object{}, fmt.Errorf("decode %s of %q: %w", f.what, o.Key, err)
		}
	}
	return o, nil
}
