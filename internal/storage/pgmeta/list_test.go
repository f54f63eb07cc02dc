package pgmeta

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/testpg"
)

func TestSuccessor(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"a/", "a0", true},
		{"abc", "abd", true},
		{"a\xff", "b", true},
		{"a\xff\xff", "b", true},
		{"\xff", "", false},
		{"", "", false},
		{"日本/", "日本0", true},
	} {
		got, ok := successor(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("successor(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
		if !ok {
			continue
		}
		// Greater than the prefix with any continuation, and no string
		// between the prefix and it lacks the prefix.
		for _, tail := range []string{"", "\x00", "z", "\xff\xff\xff"} {
			if !(c.in+tail < got) {
				t.Errorf("successor(%q) = %q is not above %q", c.in, got, c.in+tail)
			}
		}
	}
}

func TestListBounds(t *testing.T) {
	for _, c := range []struct {
		prefix, delim, after, want string
		ok                         bool
	}{
		{"", "", "", "\x00", true},
		{"", "", "b", "b\x00", true},
		{"p/", "", "a", "p/", true},
		{"p/", "", "p/x", "p/x\x00", true},
		// After inside a common prefix: start past the whole prefix.
		{"", "/", "a/1", "a0", true},
		{"", "/", "a/", "a0", true},
		{"p/", "/", "p/q/r", "p/q0", true},
		// After outside the prefix's rolled-up part.
		{"p/", "/", "a/1", "p/", true},
		{"", "\xff", "a\xff", "b", true},
		{"", "\xff", "\xff", "", false},
	} {
		got, ok := listBounds(c.prefix, c.delim, c.after)
		if got != c.want || ok != c.ok {
			t.Errorf("listBounds(%q, %q, %q) = %q, %v; want %q, %v", c.prefix, c.delim, c.after, got, ok, c.want, c.ok)
		}
	}
}

// queryCounter counts the statements a pool sends.
type queryCounter struct{ n atomic.Int64 }

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	return ctx
}
func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// bigBucket fills bucket "big" with 20,000 keys, dir000/f00000 ..
// dir099/f00199, loaded with COPY because 20,000 transactions would make the
// test slow without testing anything more.
func bigBucket(t testing.TB, db *DB) {
	t.Helper()
	ctx := context.Background()
	if err := db.CreateBucket(ctx, storage.Bucket{Name: "big", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var rows [][]any
	for d := range 100 {
		for f := range 200 {
			key := fmt.Sprintf("dir%03d/f%05d", d, f)
			rows = append(rows, []any{"big", []byte(key), int64(f), "etag", now, "text/plain", "", "", "", "", ""})
		}
	}
	n, err := db.pool.CopyFrom(ctx, pgx.Identifier{"objects"},
		[]string{"bucket", "key", "size", "etag", "last_modified", "content_type", "content_encoding",
			"content_disposition", "content_language", "cache_control", "expires"},
		pgx.CopyFromRows(rows))
	if err != nil || n != int64(len(rows)) {
		t.Fatalf("COPY %d rows: %d, %v", len(rows), n, err)
	}
	if _, err := db.pool.Exec(ctx, "ANALYZE objects"); err != nil {
		t.Fatal(err)
	}
}

func TestListBigBucket(t *testing.T) {
	ctx := t.Context()
	cfg, err := pgxpool.ParseConfig(testpg.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	counter := &queryCounter{}
	cfg.ConnConfig.Tracer = counter
	db, err := openConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bigBucket(t, db)

	// One page of 100 common prefixes skips 20,000 keys in one statement.
	before := counter.n.Load()
	r, err := db.ListObjects(ctx, "big", storage.ListOptions{Delimiter: "/", MaxKeys: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if statements := counter.n.Load() - before; statements != 1 {
		t.Errorf("delimiter listing sent %d statements, want 1", statements)
	}
	if len(r.CommonPrefixes) != 100 || len(r.Objects) != 0 || r.IsTruncated ||
		r.CommonPrefixes[0] != "dir000/" || r.CommonPrefixes[99] != "dir099/" {
		t.Fatalf("delimiter listing: %d prefixes (%q..), %d objects, truncated %v",
			len(r.CommonPrefixes), r.CommonPrefixes[:min(2, len(r.CommonPrefixes))], len(r.Objects), r.IsTruncated)
	}
	// Paging through prefixes continues after the last one.
	r, err = db.ListObjects(ctx, "big", storage.ListOptions{Delimiter: "/", MaxKeys: 10, After: "dir041/"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"dir042/", "dir051/"}; len(r.CommonPrefixes) != 10 || r.CommonPrefixes[0] != want[0] ||
		r.CommonPrefixes[9] != want[1] || !r.IsTruncated || r.NextAfter != want[1] {
		t.Fatalf("page after dir041/: %q truncated %v next %q", r.CommonPrefixes, r.IsTruncated, r.NextAfter)
	}
	r, err = db.ListObjects(ctx, "big", storage.ListOptions{Prefix: "dir042/", Delimiter: "/", MaxKeys: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Objects) != 200 || r.Objects[0].Key != "dir042/f00000" || r.Objects[199].Key != "dir042/f00199" || r.IsTruncated {
		t.Fatalf("prefix listing: %d objects, truncated %v", len(r.Objects), r.IsTruncated)
	}

	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, c := range []struct {
		name                  string
		prefix, delim, after  string
		limit, maxRowsFetched int
	}{
		// 100 prefixes: about one index probe each, not 20,000 rows.
		{"delimiter", "", "/", "", 1001, 200},
		{"delimiter after", "", "/", "dir050/f00003", 11, 30},
		{"prefix and delimiter", "dir007/", "/", "", 1001, 400},
		{"prefix", "dir007/", "", "", 1001, 201},
		{"plain page", "", "", "dir010/f00010", 1001, 1001},
	} {
		lower, _ := listBounds(c.prefix, c.delim, c.after)
		sql, args := listQuery("big", c.prefix, c.delim, lower, c.limit)
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			what := c.name + " " + mode
			plan := explain(t, conn.Conn(), mode, sql, args)
			var scans []map[string]any
			walkPlan(plan, func(node map[string]any) {
				if node["Relation Name"] == "objects" {
					scans = append(scans, node)
				}
			})
			if len(scans) == 0 {
				t.Fatalf("%s: no scan of objects in the plan", what)
			}
			fetched := 0.0
			for _, s := range scans {
				if typ := s["Node Type"]; (typ != "Index Scan" && typ != "Index Only Scan") || s["Index Name"] != "objects_pkey" {
					t.Errorf("%s: objects read by %v on %v, want an index scan on objects_pkey", what, typ, s["Index Name"])
				}
				rows, _ := s["Actual Rows"].(float64)
				loops, _ := s["Actual Loops"].(float64)
				fetched += rows * loops
			}
			if fetched > float64(c.maxRowsFetched) {
				t.Errorf("%s: %v rows read from objects, want at most %d", what, fetched, c.maxRowsFetched)
			}
		}
	}
}

// explain runs EXPLAIN ANALYZE of sql with args as a prepared statement under
// the given plan_cache_mode, so both the plan for these values and the
// generic plan a long-lived connection may settle on are checked.
func explain(t *testing.T, conn *pgx.Conn, mode, sql string, args []any) map[string]any {
	t.Helper()
	ctx := t.Context()
	var types, lits []string
	for _, a := range args {
		switch v := a.(type) {
		case string:
			types = append(types, "text")
			lits = append(lits, "'"+strings.ReplaceAll(v, "'", "''")+"'")
		case []byte:
			types = append(types, "bytea")
			lits = append(lits, `'\x`+hex.EncodeToString(v)+`'::bytea`)
		case int:
			types = append(types, "int")
			lits = append(lits, strconv.Itoa(v))
		default:
			t.Fatalf("explain: argument of type %T", a)
		}
	}
	for _, stmt := range []string{
		"SET plan_cache_mode = " + mode,
		"PREPARE listq (" + strings.Join(types, ", ") + ") AS " + sql,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	var out []byte
	if err := conn.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE listq ("+strings.Join(lits, ", ")+")").Scan(&out); err != nil {
		t.Fatalf("EXPLAIN: %v", err)
	}
	if _, err := conn.Exec(ctx, "DEALLOCATE listq; RESET plan_cache_mode"); err != nil {
		t.Fatal(err)
	}
	var plans []map[string]any
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("EXPLAIN output %s: %v", out, err)
	}
	plan, _ := plans[0]["Plan"].(map[string]any)
	return plan
}

func walkPlan(node map[string]any, fn func(map[string]any)) {
	if node == nil {
		return
	}
	fn(node)
	children, _ := node["Plans"].([]any)
	for _, c := range children {
		m, _ := c.(map[string]any)
		walkPlan(m, fn)
	}
}

// TestListBinaryKeys: keys and delimiters are bytes, so a delimiter that ends
// in 0xff (which no UTF-8 text contains) still rolls up and pages correctly.
func TestListBinaryKeys(t *testing.T) {
	db, err := Open(t.Context(), testpg.Start(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()
	if err := db.CreateBucket(ctx, storage.Bucket{Name: "b", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	keys := []string{"a\xff1", "a\xff2", "a\xff\xff", "b", "\xff\xff", "\xff\xffx", "c\x00d"}
	for _, k := range keys {
		if _, err := db.PutObject(ctx, storage.Object{Bucket: "b", Key: k, LastModified: time.Now()}, nil); err != nil {
			t.Fatalf("PutObject(%q): %v", k, err)
		}
	}
	var got []string
	opts := storage.ListOptions{Delimiter: "\xff", MaxKeys: 1}
	for range 20 {
		r, err := db.ListObjects(ctx, "b", opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range r.Objects {
			got = append(got, "K:"+o.Key)
		}
		for _, p := range r.CommonPrefixes {
			got = append(got, "P:"+p)
		}
		if !r.IsTruncated {
			break
		}
		opts.After = r.NextAfter
	}
	want := []string{"P:a\xff", "K:b", "K:c\x00d", "P:\xff"}
	if !slices.Equal(got, want) {
		t.Fatalf("listing with delimiter 0xff = %q, want %q", got, want)
	}
}
