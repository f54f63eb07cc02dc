// Package pgmeta implements storage.Meta on PostgreSQL, for the scale-out
// deployment where many stateless nodes share one metadata database.
//
// Every mutation is one transaction at READ COMMITTED. Conflicting writers
// are ordered by row locks taken in one fixed order (bucket, upload, object,
// part), so transactions never deadlock on each other; creation of a row that
// does not exist yet goes through INSERT ... ON CONFLICT DO NOTHING, and a
// writer that loses that race looks again and sees the winner's row. That is
// what makes If-None-Match: * exactly-once across nodes.
//
// Object keys are bytea ordered by the primary key (bucket, key), so listing
// is byte order and served by the index; see list.go for the delimiter walk.
//
// Access-key and bucket mutations send NOTIFY on channel "nfyio_changes"
// inside their transaction, so caches on other nodes learn of committed
// changes only (see Listen).
package pgmeta

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"nfyio.dev/storage/internal/storage"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLockID is the advisory lock that serialises schema migrations of
// nodes starting at the same time. Any fixed value works as long as it is not
// used for anything else in the database.
const migrationLockID int64 = 0x6e6679696f6d6967 // "nfyiomig"

// maxTxAttempts bounds retries of a transaction that PostgreSQL aborted as a
// deadlock or serialization failure.
const maxTxAttempts = 5

// Options tunes the connection pool. Zero values keep pgxpool's defaults
// (or what the DSN's pool_* parameters say).
type Options struct {
	MaxConns          int32         // default: max(4, number of CPUs)
	MinConns          int32         // connections kept open when idle
	MaxConnLifetime   time.Duration // recycle connections after this long
	MaxConnIdleTime   time.Duration // close idle connections after this long
	HealthCheckPeriod time.Duration // how often idle connections are checked
	// ApplicationName shows in pg_stat_activity; default "nfyio".
	ApplicationName string
}

// DB is a storage.Meta on PostgreSQL. It is safe for concurrent use.
type DB struct {
	pool *pgxpool.Pool
}

var _ storage.Meta = (*DB)(nil)

// Open connects to the database at dsn (a postgres:// URL or keyword/value
// string), brings its schema up to date and returns the store.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgmeta: parse DSN: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	if opts.MaxConnLifetime > 0 {
		cfg.MaxConnLifetime = opts.MaxConnLifetime
	}
	if opts.MaxConnIdleTime > 0 {
		cfg.MaxConnIdleTime = opts.MaxConnIdleTime
	}
	if opts.HealthCheckPeriod > 0 {
		cfg.HealthCheckPeriod = opts.HealthCheckPeriod
	}
	name := opts.ApplicationName
	if name == "" {
		name = "nfyio"
	}
	if _, set := cfg.ConnConfig.RuntimeParams["application_name"]; !set {
		cfg.ConnConfig.RuntimeParams["application_name"] = name
	}
	return openConfig(ctx, cfg)
}

// openConfig opens a store on a prepared pool configuration.
func openConfig(ctx context.Context, cfg *pgxpool.Config) (*DB, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgmeta: create pool: %w", err)
	}
	db := &DB{pool: pool}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pgmeta: ping: %w", err)
	}
	return nil
}

// Close closes every connection of the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("pgmeta: read migrations: %w", err)
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("pgmeta: migration %s is not named NNNN_name.sql", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("pgmeta: migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("pgmeta: read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies the migrations the database lacks, all in one transaction
// under an advisory lock: nodes starting together wait for the first one,
// then find nothing left to do; a failed migration leaves the schema as it
// was.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockID); err != nil {
			return fmt.Errorf("pgmeta: lock for migrations: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY,
			name    text NOT NULL,
			applied timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("pgmeta: create schema_migrations: %w", err)
		}
		rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return fmt.Errorf("pgmeta: read schema_migrations: %w", err)
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return fmt.Errorf("pgmeta: read schema_migrations: %w", err)
		}
		done := map[int]bool{}
		for _, v := range applied {
			done[int(v)] = true
		}
		for _, m := range ms {
			if done[m.version] {
				continue
			}
			// Exec without arguments uses the simple protocol, which runs a
			// file of several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("pgmeta: apply migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return fmt.Errorf("pgmeta: record migration %s: %w", m.name, err)
			}
		}
		return nil
	})
}

// inTx runs fn in a transaction and commits it. An error of fn is returned
// unchanged (PutCheck and change functions rely on that). Deadlocks and
// serialization failures, which PostgreSQL reports for transactions it
// aborted before they changed anything, are retried.
func (db *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.runTx(ctx, fn)
		if err == nil || attempt >= maxTxAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

func (db *DB) runTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgmeta: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		// Rollback even when ctx is done, so the connection goes back to
		// the pool clean; if that fails pgx closes it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = tx.Rollback(rctx)
		cancel()
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgmeta: commit: %w", err)
	}
	return nil
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == "40001" || pe.Code == "40P01"
}

// notifyChannel carries "key:<id>" and "bucket:<name>" payloads.
const notifyChannel = "nfyio_changes"

// notify queues a change notification; PostgreSQL delivers it when (and only
// if) tx commits.
func notify(ctx context.Context, tx pgx.Tx, kind, id string) error {
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", notifyChannel, kind+":"+id); err != nil {
		return fmt.Errorf("pgmeta: notify %s:%s: %w", kind, id, err)
	}
	return nil
}

// kb returns key as a bytea argument. pgx sends a nil slice as NULL, so the
// empty key must be a non-nil empty slice.
func kb(key string) []byte {
	if key == "" {
		return []byte{}
	}
	return []byte(key)
}

// successor returns the smallest byte string greater than every string that
// starts with p, and false when there is none (p empty or all 0xff).
func successor(p string) (string, bool) {
	b := []byte(p)
	for len(b) > 0 && b[len(b)-1] == 0xff {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return "", false
	}
	b[len(b)-1]++
	return string(b), true
}
