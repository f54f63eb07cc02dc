package pgmeta

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"nfyio.dev/storage/internal/storage"
)

// CreateBucket creates b; ErrBucketExists when the name is taken.
func (db *DB) CreateBucket(ctx context.Context, b storage.Bucket) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx,
			"INSERT INTO buckets (name, created, cors) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
			b.Name, b.Created, nilIfEmpty(b.CORS))
		if err != nil {
			return fmt.Errorf("pgmeta: create bucket %q: %w", b.Name, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %q", storage.ErrBucketExists, b.Name)
		}
		// Caches may hold "no such bucket" for this name.
		return notify(ctx, tx, KindBucket, b.Name)
	})
}

// GetBucket returns the bucket record; ErrBucketNotFound when absent.
func (db *DB) GetBucket(ctx context.Context, name string) (storage.Bucket, error) {
	b, err := scanBucket(db.pool.QueryRow(ctx, "SELECT name, created, cors FROM buckets WHERE name = $1", name))
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Bucket{}, fmt.Errorf("%w: %q", storage.ErrBucketNotFound, name)
	}
	if err != nil {
		return storage.Bucket{}, fmt.Errorf("pgmeta: get bucket %q: %w", name, err)
	}
	return b, nil
}

// ListBuckets returns every bucket in byte order of names.
func (db *DB) ListBuckets(ctx context.Context) ([]storage.Bucket, error) {
	rows, err := db.pool.Query(ctx, "SELECT name, created, cors FROM buckets ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("pgmeta: list buckets: %w", err)
	}
	bs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Bucket, error) { return scanBucket(r) })
	if err != nil {
		return nil, fmt.Errorf("pgmeta: list buckets: %w", err)
	}
	return bs, nil
}

// DeleteBucket removes an empty bucket. The bucket row is locked first, so
// a concurrent PutObject or CreateUpload (which hold a key-share lock on it)
// either committed before the emptiness check sees it, or waits and then
// finds the bucket gone.
func (db *DB) DeleteBucket(ctx context.Context, name string) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var found bool
		err := tx.QueryRow(ctx, "SELECT true FROM buckets WHERE name = $1 FOR UPDATE", name).Scan(&found)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %q", storage.ErrBucketNotFound, name)
		}
		if err != nil {
			return fmt.Errorf("pgmeta: delete bucket %q: %w", name, err)
		}
		var used bool
		err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = $1)
			OR EXISTS (SELECT 1 FROM uploads WHERE bucket = $1)`, name).Scan(&used)
		if err != nil {
			return fmt.Errorf("pgmeta: delete bucket %q: %w", name, err)
		}
		if used {
			return fmt.Errorf("%w: %q", storage.ErrBucketNotEmpty, name)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM buckets WHERE name = $1", name); err != nil {
			return fmt.Errorf("pgmeta: delete bucket %q: %w", name, err)
		}
		return notify(ctx, tx, KindBucket, name)
	})
}

// UpdateBucket runs change on the locked bucket record and stores the result.
// The name cannot change.
func (db *DB) UpdateBucket(ctx context.Context, name string, change func(*storage.Bucket) error) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		b, err := scanBucket(tx.QueryRow(ctx, "SELECT name, created, cors FROM buckets WHERE name = $1 FOR NO KEY UPDATE", name))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %q", storage.ErrBucketNotFound, name)
		}
		if err != nil {
			return fmt.Errorf("pgmeta: update bucket %q: %w", name, err)
		}
		if err := change(&b); err != nil {
			return err
		}
		if b.Name != name {
			return fmt.Errorf("pgmeta: update bucket %q: the name cannot change (to %q)", name, b.Name)
		}
		if _, err := tx.Exec(ctx, "UPDATE buckets SET created = $2, cors = $3 WHERE name = $1",
			name, b.Created, nilIfEmpty(b.CORS)); err != nil {
			return fmt.Errorf("pgmeta: update bucket %q: %w", name, err)
		}
		return notify(ctx, tx, KindBucket, name)
	})
}

func scanBucket(row pgx.Row) (storage.Bucket, error) {
	var b storage.Bucket
	if err := row.Scan(&b.Name, &b.Created, &b.CORS); err != nil {
		return storage.Bucket{}, err
	}
	b.Created = b.Created.UTC()
	if len(b.CORS) == 0 {
		b.CORS = nil
	}
	return b, nil
}

// lockBucket checks that bucket exists and holds a key-share lock on it until
// the transaction ends, so DeleteBucket cannot remove it underneath a write.
// Key-share does not conflict with UpdateBucket or other writers.
func lockBucket(ctx context.Context, tx pgx.Tx, bucket string) error {
	var found bool
	err := tx.QueryRow(ctx, "SELECT true FROM buckets WHERE name = $1 FOR KEY SHARE", bucket).Scan(&found)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %q", storage.ErrBucketNotFound, bucket)
	}
	if err != nil {
		return fmt.Errorf("pgmeta: lock bucket %q: %w", bucket, err)
	}
	return nil
}

// bucketExists tells a missing bucket from an empty result.
func bucketExists(ctx context.Context, q querier, bucket string) error {
	var found bool
	err := q.QueryRow(ctx, "SELECT true FROM buckets WHERE name = $1", bucket).Scan(&found)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %q", storage.ErrBucketNotFound, bucket)
	}
	if err != nil {
		return fmt.Errorf("pgmeta: look up bucket %q: %w", bucket, err)
	}
	return nil
}

// querier is what the pool and a transaction have in common.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
