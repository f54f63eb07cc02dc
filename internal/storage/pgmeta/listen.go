package pgmeta

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Kinds of change passed to the Listen callback.
const (
	// KindKey: the access key with this id was created, changed or deleted.
	KindKey = "key"
	// KindBucket: the bucket with this name was created, reconfigured or
	// deleted.
	KindBucket = "bucket"
	// KindReset (id ""): the listener has just subscribed, after start or
	// after a lost connection; changes made while it was not subscribed were
	// missed, so a cache must drop everything it holds.
	KindReset = "reset"
)

// ListenAppName is the application_name of the listening connection, so it
// can be told apart in pg_stat_activity.
const ListenAppName = "nfyio-listen"

// listenIdle is how long Listen waits for a notification before checking
// that its connection still answers; a dead peer that sent no FIN would
// otherwise leave it waiting forever.
const listenIdle = 30 * time.Second

// Listen delivers change notifications to fn until ctx ends, on a dedicated
// connection outside the pool. fn gets (KindKey, id), (KindBucket, name), or
// (KindReset, "") each time the subscription starts, including the first
// time: a notification is delivered for every change committed after that
// KindReset call returned. If the connection drops, Listen reconnects with
// backoff and calls fn(KindReset, "") again. fn runs on Listen's goroutine;
// it should be quick.
//
// Listen returns the error of the first connection attempt (so a wrong DSN is
// reported at once), and otherwise ctx.Err() when ctx ends.
func (db *DB) Listen(ctx context.Context, fn func(kind, id string)) error {
	cfg := db.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = ListenAppName

	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	first := true
	for {
		conn, err := subscribe(ctx, cfg)
		if err != nil {
			if first {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		first = false
		backoff = minBackoff
		fn(KindReset, "")
		// receive returns when the connection is lost (reconnect) or ctx
		// ends; which one is told by ctx, so its error is not needed.
		_ = receive(ctx, conn, fn)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = conn.Close(cctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func subscribe(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgmeta: listen: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("pgmeta: listen: %w", err)
	}
	return conn, nil
}

// receive passes notifications to fn until the connection fails or ctx ends.
func receive(ctx context.Context, conn *pgx.Conn, fn func(kind, id string)) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed() {
				// Only idle: a timeout leaves the connection usable.
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err = conn.Ping(pctx)
				cancel()
				if err == nil {
					continue
				}
			}
			return err
		}
		kind, id, ok := strings.Cut(n.Payload, ":")
		if !ok {
			continue // not ours
		}
		fn(kind, id)
	}
}
