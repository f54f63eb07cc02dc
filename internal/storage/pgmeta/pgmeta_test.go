package pgmeta_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/storage/pgmeta"
	"nfyio.dev/storage/internal/storage/storagetest"
	"nfyio.dev/storage/internal/testpg"
)

// open returns a store on dsn closed at the end of the test.
func open(t testing.TB, dsn string) *pgmeta.DB {
	t.Helper()
	db, err := pgmeta.Open(context.Background(), dsn, pgmeta.Options{MaxConns: 8})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storagetest.RunMeta(t, func(t *testing.T) storage.Meta {
		return open(t, testpg.Start(t))
	})
}

// TestTwoNodes runs two stores on one database, as two nodes would, and
// checks the guarantees that must hold across them.
func TestTwoNodes(t *testing.T) {
	dsn := testpg.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	nodes := []*pgmeta.DB{a, b}
	ctx := t.Context()

	t.Run("RedeemExactlyOnce", func(t *testing.T) {
		for round := range 20 {
			token := fmt.Sprintf("token-%d", round)
			const n = 16
			results := make(chan error, n)
			start := make(chan struct{})
			for i := range n {
				go func() {
					<-start
					results <- nodes[i%2].Redeem(ctx, token, time.Now().Add(time.Hour))
				}()
			}
			close(start)
			ok := 0
			for range n {
				switch err := <-results; {
				case err == nil:
					ok++
				case !errors.Is(err, storage.ErrAlreadyRedeemed):
					t.Fatalf("Redeem: %v", err)
				}
			}
			if ok != 1 {
				t.Fatalf("round %d: %d of %d concurrent redemptions on two nodes succeeded, want 1", round, ok, n)
			}
		}
	})

	t.Run("IfNoneMatchCreateExactlyOnce", func(t *testing.T) {
		if err := a.CreateBucket(ctx, storage.Bucket{Name: "race", Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
		refused := errors.New("If-None-Match: * failed")
		ifNoneMatch := func(old *storage.Object) error {
			if old != nil {
				return refused
			}
			return nil
		}
		for round := range 20 {
			key := fmt.Sprintf("k%d", round)
			const n = 12
			type result struct {
				writer int
				err    error
			}
			results := make(chan result, n)
			start := make(chan struct{})
			for i := range n {
				go func() {
					<-start
					o := storage.Object{Bucket: "race", Key: key, ETag: fmt.Sprint(i), LastModified: time.Now()}
					_, err := nodes[i%2].PutObject(ctx, o, ifNoneMatch)
					results <- result{i, err}
				}()
			}
			close(start)
			winner := -1
			for range n {
				r := <-results
				switch {
				case r.err == nil:
					if winner >= 0 {
						t.Fatalf("round %d: writers %d and %d both created %q with If-None-Match", round, winner, r.writer, key)
					}
					winner = r.writer
				case r.err != refused:
					t.Fatalf("round %d: PutObject: %v", round, r.err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: no writer created %q", round, key)
			}
			got, err := b.GetObject(ctx, "race", key)
			if err != nil || got.ETag != fmt.Sprint(winner) {
				t.Fatalf("round %d: stored record %+v, %v; want the winner's (%d)", round, got, err, winner)
			}
		}
	})

	// Each node disables or deletes a different one of the last admin-like
	// keys under a check that another stays enabled: the row locks of the
	// checked changes must serialise them across the two stores.
	t.Run("KeysCheckAcrossNodes", func(t *testing.T) {
		storagetest.KeysCheckRace(t, a, b)
	})

	t.Run("CreateBucketOnce", func(t *testing.T) {
		const n = 8
		errs := make(chan error, n)
		for i := range n {
			go func() { errs <- nodes[i%2].CreateBucket(ctx, storage.Bucket{Name: "contended", Created: time.Now()}) }()
		}
		ok := 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				ok++
			case !errors.Is(err, storage.ErrBucketExists):
				t.Fatal(err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d concurrent CreateBucket calls succeeded, want 1", ok)
		}
	})

	// A bucket delete racing with puts into it either fails with
	// ErrBucketNotEmpty or wins, and then no put succeeded: no object is
	// ever left in a deleted bucket.
	t.Run("DeleteBucketRacingPut", func(t *testing.T) {
		for round := range 10 {
			name := fmt.Sprintf("del%d", round)
			if err := a.CreateBucket(ctx, storage.Bucket{Name: name, Created: time.Now()}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var putErr, delErr error
			start := make(chan struct{})
			wg.Go(func() {
				<-start
				_, putErr = a.PutObject(ctx, storage.Object{Bucket: name, Key: "k", LastModified: time.Now()}, nil)
			})
			wg.Go(func() {
				<-start
				delErr = b.DeleteBucket(ctx, name)
			})
			close(start)
			wg.Wait()
			switch {
			case putErr == nil && errors.Is(delErr, storage.ErrBucketNotEmpty):
			case delErr == nil && errors.Is(putErr, storage.ErrBucketNotFound):
			default:
				t.Fatalf("round %d: put %v, delete %v", round, putErr, delErr)
			}
		}
	})
}

// notes collects Listen callbacks.
type notes chan [2]string

func (n notes) fn(kind, id string) { n <- [2]string{kind, id} }

// next returns the next notification. The deadline is the promptness the
// design promises (a change reaches other nodes' caches within a second), not
// a measurement.
func (n notes) next(t *testing.T, what string) [2]string {
	t.Helper()
	select {
	case got := <-n:
		return got
	case <-time.After(time.Second):
		t.Fatalf("%s: no notification within a second", what)
		return [2]string{}
	}
}

func (n notes) expect(t *testing.T, what, kind, id string) {
	t.Helper()
	if got := n.next(t, what); got != [2]string{kind, id} {
		t.Fatalf("%s: notification %q, want %q", what, got, [2]string{kind, id})
	}
}

func TestListen(t *testing.T) {
	dsn := testpg.Start(t)
	listener, writer := open(t, dsn), open(t, dsn)
	ctx, cancel := context.WithCancel(t.Context())
	ch := make(notes, 100)
	done := make(chan error, 1)
	go func() { done <- listener.Listen(ctx, ch.fn) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Listen returned %v after cancel, want context.Canceled", err)
		}
	}()
	ch.expect(t, "subscription", pgmeta.KindReset, "")

	key := storage.AccessKey{ID: "AKIALISTEN", Name: "n", Created: time.Now()}
	if err := writer.PutAccessKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	ch.expect(t, "PutAccessKey on the other node", pgmeta.KindKey, key.ID)

	// A change that is rolled back sends nothing: the next notification is
	// the one of the change after it (notifications arrive in commit order).
	refused := errors.New("refused")
	if err := writer.UpdateAccessKey(ctx, key.ID, nil, func(k *storage.AccessKey) error { return refused }); err != refused {
		t.Fatal(err)
	}
	if err := writer.UpdateAccessKey(ctx, key.ID, nil, func(k *storage.AccessKey) error { k.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	ch.expect(t, "UpdateAccessKey", pgmeta.KindKey, key.ID)

	if err := writer.CreateBucket(ctx, storage.Bucket{Name: "nb", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ch.expect(t, "CreateBucket", pgmeta.KindBucket, "nb")
	if err := writer.UpdateBucket(ctx, "nb", func(b *storage.Bucket) error { b.CORS = []byte("<CORSConfiguration/>"); return nil }); err != nil {
		t.Fatal(err)
	}
	ch.expect(t, "UpdateBucket", pgmeta.KindBucket, "nb")
	// Object writes are not configuration: no notification for them.
	if _, err := writer.PutObject(ctx, storage.Object{Bucket: "nb", Key: "o", LastModified: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.DeleteObject(ctx, "nb", "o", nil); err != nil {
		t.Fatal(err)
	}
	if err := writer.DeleteBucket(ctx, "nb"); err != nil {
		t.Fatal(err)
	}
	ch.expect(t, "DeleteBucket", pgmeta.KindBucket, "nb")
	if err := writer.DeleteAccessKey(ctx, key.ID, nil); err != nil {
		t.Fatal(err)
	}
	ch.expect(t, "DeleteAccessKey", pgmeta.KindKey, key.ID)

	// Kill the listening connection from the other node: Listen reconnects,
	// says so with a reset, and notifications flow again.
	var killed int
	err := writerConn(t, dsn).QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, pgmeta.ListenAppName).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d listening backends (%v), want 1", killed, err)
	}
	// Reconnecting may take a backoff step; the reset is what matters.
	select {
	case got := <-ch:
		if got != [2]string{pgmeta.KindReset, ""} {
			t.Fatalf("after the connection was killed: %q, want a reset", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Listen did not resubscribe after its connection was killed")
	}
	if err := writer.PutAccessKey(ctx, storage.AccessKey{ID: "AKIAAFTER", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ch.expect(t, "PutAccessKey after reconnect", pgmeta.KindKey, "AKIAAFTER")
}

// TestListenFirstConnectError: when the first subscription cannot be made,
// Listen returns the error instead of retrying in the background forever.
func TestListenFirstConnectError(t *testing.T) {
	dsn := testpg.Start(t)
	db := open(t, dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	adminDSN, err := testpg.WithDatabase(dsn, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	// Connections already open (the pool's) stay; new ones are refused.
	if _, err := writerConn(t, adminDSN).Exec(t.Context(), "ALTER DATABASE "+pgx.Identifier{cfg.Database}.Sanitize()+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	err = db.Listen(t.Context(), func(kind, id string) { t.Errorf("callback got %s:%s", kind, id) })
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Listen on a database refusing connections returned %v, want the connection error", err)
	}
}

func writerConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestConcurrentOpen starts several nodes at once on a new database: the
// migration runs once and every node comes up.
func TestConcurrentOpen(t *testing.T) {
	dsn := testpg.Start(t)
	const n = 6
	errs := make(chan error, n)
	for range n {
		go func() {
			db, err := pgmeta.Open(t.Context(), dsn, pgmeta.Options{MaxConns: 2})
			if err == nil {
				err = db.Ping(t.Context())
				db.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	conn := writerConn(t, dsn)
	var rows, versions int
	if err := conn.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || rows != versions {
		t.Fatalf("schema_migrations has %d rows for %d versions", rows, versions)
	}
	// Opening again applies nothing new.
	db := open(t, dsn)
	var again int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&again); err != nil {
		t.Fatal(err)
	}
	if again != rows {
		t.Fatalf("reopening changed schema_migrations from %d to %d rows", rows, again)
	}
	if err := db.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestUploadInMissingBucket: upload operations name the missing bucket, as
// the embedded backend does, rather than a missing upload.
func TestUploadInMissingBucket(t *testing.T) {
	db := open(t, testpg.Start(t))
	ctx := t.Context()
	for what, err := range map[string]error{
		"GetUpload": func() error { _, err := db.GetUpload(ctx, "nope", "k", "u"); return err }(),
		"PutPart": func() error {
			_, err := db.PutPart(ctx, "nope", "k", "u", storage.Part{Number: 1, LastModified: time.Now()})
			return err
		}(),
		"ListParts":      func() error { _, _, err := db.ListParts(ctx, "nope", "k", "u", 0, 10); return err }(),
		"AbortUpload":    func() error { _, err := db.AbortUpload(ctx, "nope", "k", "u"); return err }(),
		"CompleteUpload": func() error { _, _, err := db.CompleteUpload(ctx, "nope", "k", "u", storage.Object{}, nil); return err }(),
	} {
		if !errors.Is(err, storage.ErrBucketNotFound) {
			t.Errorf("%s in a missing bucket: %v, want ErrBucketNotFound", what, err)
		}
	}
}
