package pgmeta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"nfyio.dev/storage/internal/storage"
)

const keyCols = `id, name, sealed_secret, scopes, buckets, prefix, disabled, created, expires,
	max_url_ttl, max_object_size, content_types, root`

// PutAccessKey creates k; ErrKeyExists when its id is taken.
func (db *DB) PutAccessKey(ctx context.Context, k storage.AccessKey) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO access_keys ("+keyCols+
			") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO NOTHING",
			keyArgs(k)...)
		if err != nil {
			return fmt.Errorf("pgmeta: create access key %s: %w", k.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %s", storage.ErrKeyExists, k.ID)
		}
		// Caches may hold "no such key" for this id.
		return notify(ctx, tx, KindKey, k.ID)
	})
}

// lockKey locks key id for the rest of tx and returns it; ErrKeyNotFound
// when absent. With a check, it locks every key instead and runs the check
// over them (see lockAllKeys).
func lockKey(ctx context.Context, tx pgx.Tx, id string, check storage.KeysCheck) (storage.AccessKey, error) {
	if check == nil {
		k, err := scanKey(tx.QueryRow(ctx, "SELECT "+keyCols+" FROM access_keys WHERE id = $1 FOR UPDATE", id))
		if errors.Is(err, pgx.ErrNoRows) {
			return storage.AccessKey{}, fmt.Errorf("%w: %s", storage.ErrKeyNotFound, id)
		}
		if err != nil {
			return storage.AccessKey{}, fmt.Errorf("pgmeta: lock access key %s: %w", id, err)
		}
		return k, nil
	}
	keys, err := lockAllKeys(ctx, tx)
	if err != nil {
		return storage.AccessKey{}, err
	}
	i := slices.IndexFunc(keys, func(k storage.AccessKey) bool { return k.ID == id })
	if i < 0 {
		return storage.AccessKey{}, fmt.Errorf("%w: %s", storage.ErrKeyNotFound, id)
	}
	if err := check(keys); err != nil {
		return storage.AccessKey{}, err
	}
	return keys[i], nil
}

// lockAllKeys reads every key with a row lock held to the end of tx, which
// is what makes a KeysCheck hold across nodes: two guarded changes both lock
// every row, so the second waits for the first to end. Under READ COMMITTED
// a SELECT FOR UPDATE that waited on a row returns the row as the other
// transaction committed it (or skips it if that one deleted it), so the
// second check sees the first change. ORDER BY sorts before locking, so
// every guarded change locks in id order and two of them cannot deadlock.
// Rows inserted after the statement began are not seen: creations are not
// guarded (see storage.KeysCheck).
func lockAllKeys(ctx context.Context, tx pgx.Tx) ([]storage.AccessKey, error) {
	keys, err := queryKeys(ctx, tx, "SELECT "+keyCols+" FROM access_keys ORDER BY id FOR UPDATE")
	if err != nil {
		return nil, fmt.Errorf("pgmeta: lock access keys: %w", err)
	}
	return keys, nil
}

// UpdateAccessKey runs check (may be nil) and change on the locked key and
// stores the result. The id cannot change.
func (db *DB) UpdateAccessKey(ctx context.Context, id string, check storage.KeysCheck, change func(*storage.AccessKey) error) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		k, err := lockKey(ctx, tx, id, check)
		if err != nil {
			return err
		}
		if err := change(&k); err != nil {
			return err
		}
		if k.ID != id {
			return fmt.Errorf("pgmeta: update access key %s: the id cannot change (to %s)", id, k.ID)
		}
		if _, err := tx.Exec(ctx, `UPDATE access_keys SET name = $2, sealed_secret = $3, scopes = $4, buckets = $5,
			prefix = $6, disabled = $7, created = $8, expires = $9, max_url_ttl = $10, max_object_size = $11,
			content_types = $12, root = $13 WHERE id = $1`, keyArgs(k)...); err != nil {
			return fmt.Errorf("pgmeta: update access key %s: %w", id, err)
		}
		return notify(ctx, tx, KindKey, id)
	})
}

// GetAccessKey returns the key; ErrKeyNotFound when absent.
func (db *DB) GetAccessKey(ctx context.Context, id string) (storage.AccessKey, error) {
	k, err := scanKey(db.pool.QueryRow(ctx, "SELECT "+keyCols+" FROM access_keys WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.AccessKey{}, fmt.Errorf("%w: %s", storage.ErrKeyNotFound, id)
	}
	if err != nil {
		return storage.AccessKey{}, fmt.Errorf("pgmeta: get access key %s: %w", id, err)
	}
	return k, nil
}

// ListAccessKeys returns every key, ordered by id.
func (db *DB) ListAccessKeys(ctx context.Context) ([]storage.AccessKey, error) {
	ks, err := queryKeys(ctx, db.pool, "SELECT "+keyCols+" FROM access_keys ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("pgmeta: list access keys: %w", err)
	}
	return ks, nil
}

// queryKeys runs a query of keyCols and scans every row.
func queryKeys(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, sql string) ([]storage.AccessKey, error) {
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.AccessKey, error) { return scanKey(r) })
}

// DeleteAccessKey removes the key, after check (may be nil) passed;
// ErrKeyNotFound when absent.
func (db *DB) DeleteAccessKey(ctx context.Context, id string, check storage.KeysCheck) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if check != nil {
			if _, err := lockKey(ctx, tx, id, check); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, "DELETE FROM access_keys WHERE id = $1", id)
		if err != nil {
			return fmt.Errorf("pgmeta: delete access key %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %s", storage.ErrKeyNotFound, id)
		}
		return notify(ctx, tx, KindKey, id)
	})
}

func keyArgs(k storage.AccessKey) []any {
	var expires *time.Time
	if !k.Expires.IsZero() {
		expires = &k.Expires
	}
	return []any{k.ID, k.Name, nilIfEmpty(k.SealedSecret), nilIfNoStrings(k.Scopes), nilIfNoStrings(k.Buckets),
		k.Prefix, k.Disabled, k.Created, expires, int64(k.MaxURLTTL), k.MaxObjectSize,
		nilIfNoStrings(k.ContentTypes), k.Root}
}

func scanKey(row pgx.Row) (storage.AccessKey, error) {
	var (
		k       storage.AccessKey
		expires *time.Time
		ttl     int64
	)
	if err := row.Scan(&k.ID, &k.Name, &k.SealedSecret, &k.Scopes, &k.Buckets, &k.Prefix, &k.Disabled,
		&k.Created, &expires, &ttl, &k.MaxObjectSize, &k.ContentTypes, &k.Root); err != nil {
		return storage.AccessKey{}, err
	}
	k.Created = k.Created.UTC()
	if expires != nil {
		k.Expires = expires.UTC()
	}
	k.MaxURLTTL = time.Duration(ttl)
	if len(k.SealedSecret) == 0 {
		k.SealedSecret = nil
	}
	return k, nil
}

// nilIfNoStrings stores an empty list as NULL: the contract does not tell an
// empty list from none.
func nilIfNoStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// Redeem records a one-time token. The primary key makes the insert the
// arbiter: of any number of concurrent redemptions on any number of nodes,
// exactly one inserts the row.
func (db *DB) Redeem(ctx context.Context, token string, expires time.Time) error {
	tag, err := db.pool.Exec(ctx, "INSERT INTO redemptions (token, expires) VALUES ($1, $2) ON CONFLICT (token) DO NOTHING",
		token, expires)
	if err != nil {
		return fmt.Errorf("pgmeta: redeem: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrAlreadyRedeemed
	}
	return nil
}

// SweepRedemptions forgets tokens whose expiry is before now.
func (db *DB) SweepRedemptions(ctx context.Context, now time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, "DELETE FROM redemptions WHERE expires < $1", now)
	if err != nil {
		return 0, fmt.Errorf("pgmeta: sweep redemptions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
