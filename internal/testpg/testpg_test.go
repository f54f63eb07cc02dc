package testpg

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestStartGivesSeparateEmptyDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("two Start calls returned the same DSN %q", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatalf("connect %s: %v", a, err)
	}
	defer ca.Close(ctx)
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatalf("connect %s: %v", b, err)
	}
	defer cb.Close(ctx)

	if _, err := ca.Exec(ctx, "CREATE TABLE t (v int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 't'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("table created in one test database is visible in the other")
	}
	// The databases byte-order text, which the metadata store relies on.
	var collate string
	if err := ca.QueryRow(ctx, "SELECT datcollate FROM pg_database WHERE datname = current_database()").Scan(&collate); err != nil {
		t.Fatal(err)
	}
	if collate != "C" {
		t.Fatalf("datcollate = %q, want C", collate)
	}
}

func TestDatabaseDroppedAtCleanup(t *testing.T) {
	ctx := context.Background()
	var dsn string
	t.Run("inner", func(t *testing.T) { dsn = Start(t) })
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pgx.Connect(ctx, dsn)
	if err == nil {
		t.Fatalf("database %s still accepts connections after its test ended", cfg.Database)
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:p@h:5432/postgres?sslmode=disable", "postgres://u:p@h:5432/x1?sslmode=disable"},
		{"postgresql://h/", "postgresql://h/x1"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=x1"},
	} {
		got, err := WithDatabase(tc.in, "x1")
		if err != nil {
			t.Fatalf("WithDatabase(%q): %v", tc.in, err)
		}
		if got != tc.want {
			t.Errorf("WithDatabase(%q) = %q, want %q", tc.in, got, tc.want)
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil {
			t.Fatalf("parse %q: %v", got, err)
		}
		if cfg.Database != "x1" {
			t.Errorf("%q connects to database %q, want x1", got, cfg.Database)
		}
	}
}

// TestLaunchStop starts a second private cluster and checks Stop removes it.
func TestLaunchStop(t *testing.T) {
	if os.Getenv(EnvDSN) != "" {
		t.Skip("using an external server")
	}
	ctx := context.Background()
	c, err := Launch(ctx)
	if errors.Is(err, ErrNoPostgres) && os.Getenv(EnvRequire) != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.DSN)
	if err != nil {
		c.Stop()
		t.Fatalf("connect: %v", err)
	}
	var one int
	err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	conn.Close(ctx)
	if err != nil || one != 1 {
		c.Stop()
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cluster directory %s still exists after Stop (stat: %v)", c.Dir, err)
	}
	if conn, err := pgx.Connect(ctx, c.DSN); err == nil {
		conn.Close(ctx)
		t.Fatal("server still accepts connections after Stop")
	}
}
