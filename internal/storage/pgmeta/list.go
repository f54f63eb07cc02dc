package pgmeta

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"nfyio.dev/storage/internal/storage"
)

// Listing is served by the primary-key index (bucket, key), which orders keys
// by their bytes.
//
// Without a delimiter a page is one range scan: keys from the lower bound up
// to (excluding) the prefix's successor, LIMIT MaxKeys+1 (the extra row tells
// whether the listing is truncated).
//
// With a delimiter, scanning the keys under a common prefix would cost one
// row per key only to roll them all into one entry; a bucket with a million
// keys under "logs/" would read them all for one entry. Instead the page is a
// recursive query that walks the index one entry at a time: each step is one
// index probe for the first key at or after a cursor; a key under a common
// prefix emits that prefix, and the next probe starts at the prefix's
// successor (the smallest string greater than every string with that
// prefix), skipping all its keys. The walk runs inside PostgreSQL, so a page
// is one round trip however many prefixes it skips, and it stops after
// MaxKeys+1 entries, which bounds the work per page.

// listBounds returns the inclusive lower bound of the keys a listing can
// return, and false when none can follow After.
//
// Keys are listed when greater than After, i.e. at or after After+"\x00" (the
// smallest string greater than After). When After lies inside a common prefix
// (After is "a/1" or "a/" with delimiter "/"), that prefix sorts before After
// and was listed on an earlier page, so the walk starts after all of it.
func listBounds(prefix, delim, after string) (string, bool) {
	lower := after + "\x00"
	if prefix > lower {
		lower = prefix
	}
	if delim != "" && strings.HasPrefix(after, prefix) {
		if i := strings.Index(after[len(prefix):], delim); i >= 0 {
			next, ok := successor(after[:len(prefix)+i+len(delim)])
			if !ok {
				return "", false
			}
			if next > lower {
				lower = next
			}
		}
	}
	return lower, true
}

// cpExpr is the common prefix of o.key under the delimiter: the key up to and
// including the first delimiter after the prefix, or NULL. $pl is the byte
// length of the prefix, $d the delimiter.
func cpExpr(pl, d string) string {
	pos := "position(" + d + "::bytea IN substring(o.key FROM " + pl + "::int + 1))"
	return "CASE WHEN " + pos + " > 0 THEN substring(o.key FROM 1 FOR " + pl + "::int + " + pos +
		" + length(" + d + "::bytea) - 1) END"
}

// listQuery builds a page query and its arguments. The order of rows is the
// listing order; each row is objectCols, plus the common prefix (NULL for an
// object) when delim is set.
func listQuery(bucket, prefix, delim, lower string, limit int) (string, []any) {
	args := []any{bucket, kb(lower)}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	upper := ""
	if prefix != "" {
		if end, ok := successor(prefix); ok {
			upper = " AND o.key < " + arg(kb(end)) + "::bytea"
		}
	}
	if delim == "" {
		return "SELECT " + objectCols + " FROM objects o WHERE o.bucket = $1 AND o.key >= $2::bytea" + upper +
			" ORDER BY o.key LIMIT " + arg(limit), args
	}
	cp := cpExpr(arg(len(prefix)), arg(kb(delim)))
	lim := arg(limit)
	return `WITH RECURSIVE walk AS (
	(SELECT 1 AS n, ` + objectCols + `, ` + cp + ` AS cp
	   FROM objects o
	  WHERE o.bucket = $1 AND o.key >= $2::bytea` + upper + `
	  ORDER BY o.key LIMIT 1)
	UNION ALL
	SELECT w.n + 1, nx.*
	  FROM walk w
	 CROSS JOIN LATERAL (
		SELECT ` + objectCols + `, ` + cp + ` AS cp
		  FROM objects o
		 WHERE o.bucket = $1
		   AND o.key >= CASE WHEN w.cp IS NULL THEN w.key || '\x00'::bytea ELSE nfyio_successor(w.cp) END` + upper + `
		 ORDER BY o.key LIMIT 1) nx
	 WHERE w.n < ` + lim + `::int
)
SELECT ` + objectCols + `, cp FROM walk ORDER BY n`, args
}

// ListObjects returns one page of the bucket's records in byte order.
func (db *DB) ListObjects(ctx context.Context, bucket string, opts storage.ListOptions) (storage.ListResult, error) {
	var res storage.ListResult
	maxKeys := pageSize(opts.MaxKeys)
	lower, ok := listBounds(opts.Prefix, opts.Delimiter, opts.After)
	entries := 0
	if ok {
		sql, args := listQuery(bucket, opts.Prefix, opts.Delimiter, lower, maxKeys+1)
		rows, err := db.pool.Query(ctx, sql, args...)
		if err != nil {
			return res, fmt.Errorf("pgmeta: list %q: %w", bucket, err)
		}
		for rows.Next() {
			var cp []byte
			var extra []any
			if opts.Delimiter != "" {
				extra = []any{&cp}
			}
			o, err := scanObject(rows, bucket, extra...)
			if err != nil {
				rows.Close()
				return res, fmt.Errorf("pgmeta: list %q: %w", bucket, err)
			}
			entries++
			if entries > maxKeys {
				// One entry beyond the page: there is more.
				res.IsTruncated = true
				break
			}
			if cp != nil {
				res.CommonPrefixes = append(res.CommonPrefixes, string(cp))
				res.NextAfter = string(cp)
			} else {
				res.Objects = append(res.Objects, o)
				res.NextAfter = o.Key
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return storage.ListResult{}, fmt.Errorf("pgmeta: list %q: %w", bucket, err)
		}
	}
	if entries == 0 {
		if err := bucketExists(ctx, db.pool, bucket); err != nil {
			return storage.ListResult{}, err
		}
	}
	return res, nil
}

// maxPage keeps page sizes (plus the one look-ahead row) within PostgreSQL's
// integer; the S3 layer asks for at most 1000.
const maxPage = math.MaxInt32 - 1

func pageSize(n int) int {
	return min(max(n, 0), maxPage)
}
