// Package testpg gives tests and scripts a throwaway PostgreSQL.
//
// Start(t) returns the DSN of a fresh, empty database that is dropped when the
// test ends. Where the databases live:
//
//   - NFYIO_TEST_PG_DSN set: that server (the DSN must be allowed to CREATE
//     DATABASE); a database with a random name is created per test.
//   - otherwise: a private cluster built with Debian's PostgreSQL binaries
//     (/usr/lib/postgresql/<version>/bin), started once per test binary on
//     127.0.0.1 with a free port and shared by every test of that binary.
//
// When no PostgreSQL can be found the test is skipped, unless NFYIO_REQUIRE_PG
// is "1" (CI), where it fails so that a missing database is never silent.
//
// The private cluster is owned by a small supervisor shell process whose
// stdin is a pipe from this process. The supervisor stops the server and
// removes its directory when that pipe reaches EOF, which happens however this
// process ends (normal exit, panic, test timeout, SIGKILL), so no cluster or
// data directory outlives the test binary that started it.
package testpg

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by Start.
const (
	EnvDSN     = "NFYIO_TEST_PG_DSN"
	EnvRequire = "NFYIO_REQUIRE_PG"
)

// ErrNoPostgres is returned by Launch when no PostgreSQL binaries are found.
var ErrNoPostgres = errors.New("testpg: no PostgreSQL binaries found (looked for /usr/lib/postgresql/*/bin/initdb; install the postgresql Debian package)")

var (
	sharedOnce    sync.Once
	sharedCluster *Cluster
	sharedErr     error
)

// Start returns the DSN of a new empty database for t, dropped at t's
// cleanup. See the package comment for where it comes from.
func Start(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	admin := os.Getenv(EnvDSN)
	if admin == "" {
		sharedOnce.Do(func() {
			sharedCluster, sharedErr = Launch(context.Background())
		})
		if errors.Is(sharedErr, ErrNoPostgres) {
			if os.Getenv(EnvRequire) == "1" {
				t.Fatalf("%v (%s=1 requires a database)", sharedErr, EnvRequire)
			}
			t.Skipf("%v; set %s to use an existing server", sharedErr, EnvDSN)
		}
		if sharedErr != nil {
			t.Fatalf("testpg: start PostgreSQL: %v", sharedErr)
		}
		admin = sharedCluster.DSN
	}

	name := "nfyio_test_" + randomHex(8)
	dsn, err := CreateDatabase(ctx, admin, name)
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := DropDatabase(ctx, admin, name); err != nil {
			t.Errorf("testpg: %v", err)
		}
	})
	return dsn
}

// CreateDatabase creates database name on the server adminDSN points at and
// returns a DSN for it (adminDSN with the database replaced).
func CreateDatabase(ctx context.Context, adminDSN, name string) (string, error) {
	dsn, err := WithDatabase(adminDSN, name)
	if err != nil {
		return "", err
	}
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return "", fmt.Errorf("connect to admin database: %w", err)
	}
	defer conn.Close(context.Background())
	// template0 with an explicit encoding and C locale makes the new database
	// independent of how the server's template1 was set up.
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+
		" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
	if err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return dsn, nil
}

// DropDatabase drops database name, disconnecting any session still in it
// (pools a test forgot to close must not make cleanup fail).
func DropDatabase(ctx context.Context, adminDSN, name string) error {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return fmt.Errorf("connect to admin database: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// WithDatabase returns dsn (URL or keyword/value form) pointing at database
// name instead.
func WithDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse DSN: %w", err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// In keyword/value form a later keyword overrides an earlier one.
	return strings.TrimSpace(dsn) + " dbname=" + name, nil
}

// Cluster is a private PostgreSQL server started by Launch.
type Cluster struct {
	// DSN connects as the superuser to the "postgres" database.
	DSN  string
	Dir  string // holds the data directory and the Unix socket
	Port int

	stop   *os.File   // write end of the supervisor's stdin
	exited chan error // the supervisor's exit
}

// Launch initialises and starts a private cluster. Stop it with Stop; if this
// process ends first, the supervisor stops it anyway.
func Launch(ctx context.Context) (*Cluster, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	var lastErr error
	// The free port is found by binding and releasing it; another process
	// can take it in between, so a failed start is retried on a new port.
	for attempt := 0; attempt < 3; attempt++ {
		c, err := launch(ctx, bin)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// findBinaries returns the bin directory of the newest installed version.
func findBinaries() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	type cand struct {
		dir string
		ver int
	}
	var cs []cand
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err != nil {
			continue
		}
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		cs = append(cs, cand{dir, v})
	}
	if len(cs) == 0 {
		return "", ErrNoPostgres
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].ver > cs[j].ver })
	return cs[0].dir, nil
}

// supervisor runs as the database's owner. It initialises the cluster,
// starts it, reports "ready" on fd 3, then waits for EOF on stdin and tears
// everything down. Signals from a terminal do not reach it (own process
// group) so the teardown is not cut short by Ctrl-C.
const supervisor = `
set -u
# A caller that gave up waiting closes the status pipe; writing to it must
# not kill this shell before it has cleaned up.
trap '' PIPE
dir=$1 bin=$2 port=$3
log=$dir/server.log
ok=0
# 3>&- everywhere: the server must not inherit the status pipe, or the
# reader would never see its end.
if "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 3>&- &&
   "$bin/pg_ctl" -D "$dir/data" -l "$log" -w -t 60 -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB" start >>"$dir/initdb.log" 2>&1 3>&-
then
  ok=1
  echo ready >&3
else
  echo failed >&3
  cat "$dir/initdb.log" "$log" >&3 2>/dev/null
fi
exec 3>&-
cat >/dev/null
if [ $ok = 1 ]; then "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1; fi
rm -rf "$dir"
`

func launch(ctx context.Context, bin string) (*Cluster, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cred, err := ownerCredential()
	if err != nil {
		return nil, err
	}
	// The server runs as another user when we are root: its directory goes
	// under /tmp, which that user can reach whatever TMPDIR says; the short
	// path also keeps the Unix socket name within its length limit.
	base := ""
	if cred != nil {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "nfyio-pg-")
	if err != nil {
		return nil, fmt.Errorf("testpg: temp dir: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("testpg: chown %s: %w", dir, err)
		}
	}

	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testpg: pipe: %w", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testpg: pipe: %w", err)
	}

	cmd := exec.Command("/bin/sh", "-c", supervisor, "testpg", dir, bin, strconv.Itoa(port))
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C"}
	cmd.Stdin = stdinR
	// Output goes nowhere: a process holding this binary's stdout open after
	// it exits would make "go test" wait for it.
	cmd.Stdout = nil
	cmd.Stderr = nil
	cmd.ExtraFiles = []*os.File{statusW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		stdinR.Close()
		stdinW.Close()
		statusR.Close()
		statusW.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testpg: start supervisor: %w", err)
	}
	stdinR.Close()
	statusW.Close()
	// Reap the supervisor whenever it ends so it never lingers as a zombie.
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	type status struct {
		line string
		err  error
	}
	got := make(chan status, 1)
	go func() {
		sc := bufio.NewScanner(statusR)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		statusR.Close()
		if len(lines) > 0 && lines[0] == "ready" {
			got <- status{line: "ready"}
			return
		}
		got <- status{err: fmt.Errorf("testpg: PostgreSQL did not start:\n%s", strings.Join(lines, "\n"))}
	}()

	var st status
	select {
	case st = <-got:
	case <-ctx.Done():
		st.err = fmt.Errorf("testpg: waiting for PostgreSQL: %w", ctx.Err())
	}
	if st.err != nil {
		stdinW.Close() // the supervisor cleans up and exits
		return nil, st.err
	}
	c := &Cluster{
		DSN:    fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		Dir:    dir,
		Port:   port,
		stop:   stdinW,
		exited: waited,
	}
	return c, nil
}

// Stop stops the server and removes its directory.
func (c *Cluster) Stop() error {
	if err := c.stop.Close(); err != nil {
		return fmt.Errorf("testpg: stop: %w", err)
	}
	// The supervisor exits once the directory is gone; wait for it so the
	// caller can rely on the port and directory being released.
	select {
	case err := <-c.exited:
		if err != nil {
			return fmt.Errorf("testpg: supervisor: %w", err)
		}
		return nil
	case <-time.After(time.Minute):
		return fmt.Errorf("testpg: cluster in %s did not stop", c.Dir)
	}
}

// ownerCredential returns the credential to run the server under: the
// postgres system user when running as root (initdb refuses root), nil
// (this process's user) otherwise.
func ownerCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("testpg: running as root needs the postgres system user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("testpg: uid of postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("testpg: gid of postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testpg: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}
