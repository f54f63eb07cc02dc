package pgmeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

const partCols = "number, size, etag, last_modified, checksum, blob, blob_size"

// CreateUpload records a new multipart upload.
func (db *DB) CreateUpload(ctx context.Context, u storage.Upload) error {
	tmpl, err := json.Marshal(u.Template)
	if err != nil {
		return fmt.Errorf("pgmeta: encode template of upload %q: %w", u.ID, err)
	}
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockBucket(ctx, tx, u.Bucket); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO uploads (bucket, upload_id, key, initiated, template) VALUES ($1, $2, $3, $4, $5)",
			u.Bucket, u.ID, kb(u.Key), u.Initiated, tmpl)
		if err != nil {
			return fmt.Errorf("pgmeta: create upload %q of %q/%q: %w", u.ID, u.Bucket, u.Key, err)
		}
		return nil
	})
}

// GetUpload returns the upload; ErrUploadNotFound unless bucket, key and id
// all match.
func (db *DB) GetUpload(ctx context.Context, bucket, key, uploadID string) (storage.Upload, error) {
	u, err := scanUpload(db.pool.QueryRow(ctx,
		"SELECT upload_id, key, initiated, template FROM uploads WHERE bucket = $1 AND upload_id = $2 AND key = $3",
		bucket, uploadID, kb(key)), bucket)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Upload{}, uploadNotFound(ctx, db.pool, bucket, key, uploadID)
	}
	if err != nil {
		return storage.Upload{}, fmt.Errorf("pgmeta: get upload %q: %w", uploadID, err)
	}
	return u, nil
}

// lockUpload checks that the upload exists and locks its row: share mode for
// PutPart (parts of one upload may arrive in parallel), exclusive for
// completion and abort, which then wait for in-flight parts and make later
// ones fail with ErrUploadNotFound.
func lockUpload(ctx context.Context, tx pgx.Tx, bucket, key, uploadID string, exclusive bool) (storage.Upload, error) {
	mode := " FOR KEY SHARE"
	if exclusive {
		mode = " FOR UPDATE"
	}
	u, err := scanUpload(tx.QueryRow(ctx,
		"SELECT upload_id, key, initiated, template FROM uploads WHERE bucket = $1 AND upload_id = $2 AND key = $3"+mode,
		bucket, uploadID, kb(key)), bucket)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Upload{}, uploadNotFound(ctx, tx, bucket, key, uploadID)
	}
	if err != nil {
		return storage.Upload{}, fmt.Errorf("pgmeta: lock upload %q: %w", uploadID, err)
	}
	return u, nil
}

// uploadNotFound is the error for an upload that is not there: the bucket's
// absence when that is the reason (as the embedded backend reports it),
// ErrUploadNotFound otherwise.
func uploadNotFound(ctx context.Context, q querier, bucket, key, uploadID string) error {
	if err := bucketExists(ctx, q, bucket); err != nil {
		return err
	}
	return fmt.Errorf("%w: %q of %q/%q", storage.ErrUploadNotFound, uploadID, bucket, key)
}

// PutPart records p, returning the part it replaced. Like PutObject, an
// existing part is locked before it is replaced, and a lost creation race is
// retried, so concurrent uploads of one part number each see the part they
// replaced and no blob is forgotten.
func (db *DB) PutPart(ctx context.Context, bucket, key, uploadID string, p storage.Part) (*storage.Part, error) {
	checksum, err := jsonOrNull(p.Checksum != nil, p.Checksum)
	if err != nil {
		return nil, fmt.Errorf("pgmeta: encode checksum of part %d: %w", p.Number, err)
	}
	args := []any{bucket, uploadID, p.Number, p.Size, p.ETag, p.LastModified, checksum, p.Segment.Blob, p.Segment.Size}
	var replaced *storage.Part
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := lockUpload(ctx, tx, bucket, key, uploadID, false); err != nil {
			return err
		}
		for range maxCreateRaces {
			old, err := scanPart(tx.QueryRow(ctx, "SELECT "+partCols+
				" FROM parts WHERE bucket = $1 AND upload_id = $2 AND number = $3 FOR UPDATE", bucket, uploadID, p.Number))
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("pgmeta: read part %d of %q: %w", p.Number, uploadID, err)
			}
			if err == nil {
				if _, err := tx.Exec(ctx, `UPDATE parts SET size = $4, etag = $5, last_modified = $6, checksum = $7,
					blob = $8, blob_size = $9 WHERE bucket = $1 AND upload_id = $2 AND number = $3`, args...); err != nil {
					return fmt.Errorf("pgmeta: update part %d of %q: %w", p.Number, uploadID, err)
				}
				replaced = &old
				return nil
			}
			tag, err := tx.Exec(ctx, `INSERT INTO parts (bucket, upload_id, `+partCols+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`, args...)
			if err != nil {
				return fmt.Errorf("pgmeta: insert part %d of %q: %w", p.Number, uploadID, err)
			}
			if tag.RowsAffected() == 1 {
				replaced = nil
				return nil
			}
		}
		return s3err.ConditionalRequestConflict.Wrap(fmt.Errorf("pgmeta: put part %d of %q: lost %d creation races", p.Number, uploadID, maxCreateRaces))
	})
	if err != nil {
		return nil, err
	}
	return replaced, nil
}

// ListParts returns up to max parts numbered above afterPart, and whether
// more remain.
func (db *DB) ListParts(ctx context.Context, bucket, key, uploadID string, afterPart, maxParts int) ([]storage.Part, bool, error) {
	maxParts = pageSize(maxParts)
	var (
		parts []storage.Part
		more  bool
	)
	// A read-only transaction so the upload check and the parts are one
	// snapshot: a completion in between cannot make the upload look empty.
	err := db.inReadTx(ctx, func(tx pgx.Tx) error {
		parts, more = nil, false
		var found bool
		err := tx.QueryRow(ctx, "SELECT true FROM uploads WHERE bucket = $1 AND upload_id = $2 AND key = $3",
			bucket, uploadID, kb(key)).Scan(&found)
		if errors.Is(err, pgx.ErrNoRows) {
			return uploadNotFound(ctx, tx, bucket, key, uploadID)
		}
		if err != nil {
			return fmt.Errorf("pgmeta: list parts of %q: %w", uploadID, err)
		}
		rows, err := tx.Query(ctx, "SELECT "+partCols+
			" FROM parts WHERE bucket = $1 AND upload_id = $2 AND number > $3 ORDER BY number LIMIT $4",
			bucket, uploadID, afterPart, maxParts+1)
		if err != nil {
			return fmt.Errorf("pgmeta: list parts of %q: %w", uploadID, err)
		}
		all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Part, error) { return scanPart(r) })
		if err != nil {
			return fmt.Errorf("pgmeta: list parts of %q: %w", uploadID, err)
		}
		if len(all) > maxParts {
			all, more = all[:maxParts], true
		}
		parts = all
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return parts, more, nil
}

// CompleteUpload replaces the upload by the object o in one transaction.
func (db *DB) CompleteUpload(ctx context.Context, bucket, key, uploadID string, o storage.Object, check storage.PutCheck) (*storage.Object, []storage.Part, error) {
	o.Bucket, o.Key = bucket, key
	var (
		replaced *storage.Object
		unused   []storage.Part
	)
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		unused = nil
		// Lock order bucket, upload, object, part, as everywhere.
		if err := lockBucket(ctx, tx, bucket); err != nil {
			return err
		}
		if _, err := lockUpload(ctx, tx, bucket, key, uploadID, true); err != nil {
			return err
		}
		var err error
		if replaced, err = putObjectTx(ctx, tx, o, check); err != nil {
			return err
		}
		parts, err := removeUpload(ctx, tx, bucket, uploadID)
		if err != nil {
			return err
		}
		current := make(map[string]bool, len(parts))
		for _, p := range parts {
			current[p.Segment.Blob] = true
		}
		used := map[string]bool{}
		for _, s := range o.Segments {
			if !current[s.Blob] {
				// Returning rolls the transaction back: the upload stays.
				return storage.ErrPartChanged
			}
			used[s.Blob] = true
		}
		for _, p := range parts {
			if !used[p.Segment.Blob] {
				unused = append(unused, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return replaced, unused, nil
}

// AbortUpload removes the upload and returns its parts.
func (db *DB) AbortUpload(ctx context.Context, bucket, key, uploadID string) ([]storage.Part, error) {
	var parts []storage.Part
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := lockUpload(ctx, tx, bucket, key, uploadID, true); err != nil {
			return err
		}
		var err error
		parts, err = removeUpload(ctx, tx, bucket, uploadID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return parts, nil
}

// removeUpload deletes a locked upload and its parts, returning the parts.
func removeUpload(ctx context.Context, tx pgx.Tx, bucket, uploadID string) ([]storage.Part, error) {
	rows, err := tx.Query(ctx, "DELETE FROM parts WHERE bucket = $1 AND upload_id = $2 RETURNING "+partCols, bucket, uploadID)
	if err != nil {
		return nil, fmt.Errorf("pgmeta: delete parts of %q: %w", uploadID, err)
	}
	parts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Part, error) { return scanPart(r) })
	if err != nil {
		return nil, fmt.Errorf("pgmeta: delete parts of %q: %w", uploadID, err)
	}
	slices.SortFunc(parts, func(a, b storage.Part) int { return a.Number - b.Number })
	if _, err := tx.Exec(ctx, "DELETE FROM uploads WHERE bucket = $1 AND upload_id = $2", bucket, uploadID); err != nil {
		return nil, fmt.Errorf("pgmeta: delete upload %q: %w", uploadID, err)
	}
	return parts, nil
}

// ListUploads returns a page of uploads ordered by key, initiation and id,
// with uploads under a common prefix rolled up. Uploads are few next to
// objects, so the walk runs here: batches in index order, re-querying from a
// common prefix's successor when one is met.
func (db *DB) ListUploads(ctx context.Context, bucket string, opts storage.ListUploadsOptions) (storage.ListUploadsResult, error) {
	var res storage.ListUploadsResult
	maxUploads := pageSize(opts.MaxUploads)
	entries := 0
	// add counts an entry and reports whether the page had room for it.
	add := func() bool {
		entries++
		if entries > maxUploads {
			res.IsTruncated = true
			return false
		}
		return true
	}
	err := db.inReadTx(ctx, func(tx pgx.Tx) error {
		res, entries = storage.ListUploadsResult{}, 0

		// The rest of the marker key's own uploads come first. S3 names
		// them by an upload ID greater than the marker; the marker is the
		// last upload of the previous page, so continuing after its
		// position (initiation, id) gives every upload once even when ids
		// do not grow with time. If the marker upload is gone, ids greater
		// than the marker's are listed, as S3 describes.
		km, idm := opts.KeyMarker, opts.UploadIDMarker
		if km != "" && idm != "" && strings.HasPrefix(km, opts.Prefix) &&
			(opts.Delimiter == "" || !strings.Contains(km[len(opts.Prefix):], opts.Delimiter)) {
			var sql string
			args := []any{bucket, kb(km), idm, maxUploads + 1}
			var at time.Time
			err := tx.QueryRow(ctx, "SELECT initiated FROM uploads WHERE bucket = $1 AND upload_id = $2 AND key = $3",
				bucket, idm, kb(km)).Scan(&at)
			switch {
			case err == nil:
				sql = "AND (initiated, upload_id) > ($5, $3)"
				args = append(args, at)
			case errors.Is(err, pgx.ErrNoRows):
				sql = "AND upload_id > $3"
			default:
				return fmt.Errorf("pgmeta: list uploads of %q: %w", bucket, err)
			}
			rows, err := tx.Query(ctx, "SELECT upload_id, key, initiated, template FROM uploads WHERE bucket = $1 AND key = $2 "+
				sql+" ORDER BY initiated, upload_id LIMIT $4", args...)
			if err != nil {
				return fmt.Errorf("pgmeta: list uploads of %q: %w", bucket, err)
			}
			ups, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Upload, error) { return scanUpload(r, bucket) })
			if err != nil {
				return fmt.Errorf("pgmeta: list uploads of %q: %w", bucket, err)
			}
			for _, u := range ups {
				if !add() {
					return nil
				}
				res.Uploads = append(res.Uploads, u)
			}
		}

		lower, ok := listBounds(opts.Prefix, opts.Delimiter, km)
		if !ok {
			return nil
		}
		upper, bounded := "", false
		if opts.Prefix != "" {
			upper, bounded = successor(opts.Prefix)
		}
		// The cursor is a position in index order; (lower, -infinity, "")
		// is before every upload of key lower.
		cur := struct {
			key string
			at  pgtype.Timestamptz
			id  string
		}{lower, pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, ""}
		for {
			sql := "SELECT upload_id, key, initiated, template FROM uploads WHERE bucket = $1 AND (key, initiated, upload_id) > ($2, $3, $4)"
			// Enough rows to fill the page plus the one that tells it is
			// truncated.
			limit := maxUploads + 1 - entries
			args := []any{bucket, kb(cur.key), cur.at, cur.id, limit}
			if bounded {
				sql += " AND key < $6"
				args = append(args, kb(upper))
			}
			rows, err := tx.Query(ctx, sql+" ORDER BY key, initiated, upload_id LIMIT $5", args...)
			if err != nil {
				return fmt.Errorf("pgmeta: list uploads of %q: %w", bucket, err)
			}
			batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Upload, error) { return scanUpload(r, bucket) })
			if err != nil {
				return fmt.Errorf("pgmeta: list uploads of %q: %w", bucket, err)
			}
			if len(batch) == 0 {
				return nil
			}
			jumped := false
			for _, u := range batch {
				if opts.Delimiter != "" {
					if i := strings.Index(u.Key[len(opts.Prefix):], opts.Delimiter); i >= 0 {
						cp := u.Key[:len(opts.Prefix)+i+len(opts.Delimiter)]
						if !add() {
							return nil
						}
						res.CommonPrefixes = append(res.CommonPrefixes, cp)
						next, ok := successor(cp)
						if !ok {
							return nil
						}
						cur.key, cur.at, cur.id = next, pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, ""
						jumped = true
						break
					}
				}
				if !add() {
					return nil
				}
				res.Uploads = append(res.Uploads, u)
				cur.key, cur.at, cur.id = u.Key, pgtype.Timestamptz{Time: u.Initiated, Valid: true}, u.ID
			}
			if !jumped && len(batch) < limit {
				return nil
			}
		}
	})
	if err != nil {
		return storage.ListUploadsResult{}, err
	}
	if entries == 0 {
		if err := bucketExists(ctx, db.pool, bucket); err != nil {
			return storage.ListUploadsResult{}, err
		}
	}
	return res, nil
}

// inReadTx runs fn in a read-only REPEATABLE READ transaction: one snapshot
// across its statements.
func (db *DB) inReadTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("pgmeta: begin: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = tx.Rollback(rctx)
		cancel()
	}()
	return fn(tx)
}

func scanUpload(row pgx.Row, bucket string) (storage.Upload, error) {
	var (
		u    storage.Upload
		key  []byte
		tmpl []byte
	)
	if err := row.Scan(&u.ID, &key, &u.Initiated, &tmpl); err != nil {
		return storage.Upload{}, err
	}
	u.Bucket, u.Key = bucket, string(key)
	u.Initiated = u.Initiated.UTC()
	if err := json.Unmarshal(tmpl, &u.Template); err != nil {
		return storage.Upload{}, fmt.Errorf("decode template of upload %q: %w", u.ID, err)
	}
	u.Template.Bucket, u.Template.Key = u.Bucket, u.Key
	return u, nil
}

func scanPart(row pgx.Row) (storage.Part, error) {
	var (
		p        storage.Part
		checksum []byte
	)
	if err := row.Scan(&p.Number, &p.Size, &p.ETag, &p.LastModified, &checksum, &p.Segment.Blob, &p.Segment.Size); err != nil {
		return storage.Part{}, err
	}
	p.LastModified = p.LastModified.UTC()
	if len(checksum) > 0 {
		if err := json.Unmarshal(checksum, &p.Checksum); err != nil {
			return storage.Part{}, fmt.Errorf("decode checksum of part %d: %w", p.Number, err)
		}
	}
	return p, nil
}
