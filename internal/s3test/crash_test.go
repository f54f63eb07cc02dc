package s3test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"nfyio.dev/storage/internal/fsck"
)

// TestRealProcess runs the nfyio binary as a real process: SIGKILL under
// load, SIGTERM with an upload in flight, fsck against a live server, and
// the TLS and admin flags. The binary is built once for all of them.
func TestRealProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if Backend() != "embedded" {
		t.Skip("the process tests run the embedded store of their own data dir; one backend run is enough")
	}
	NoEnv(t)
	bin := prBuild(t)
	t.Run("SIGKILL under load", func(t *testing.T) { prCrashRounds(t, bin) })
	t.Run("SIGTERM drains uploads", func(t *testing.T) { prGracefulShutdown(t, bin) })
	t.Run("fsck refuses a running store", func(t *testing.T) { prFsckLocked(t, bin) })
	t.Run("TLS and admin listener flags", func(t *testing.T) { prTLSAndAdminFlags(t, bin) })
}

// prBuild compiles cmd/nfyio into the test's temp dir.
func prBuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nfyio")
	cmd := exec.Command("go", "build", "-buildvcs=false", "-o", bin, "nfyio.dev/storage/cmd/nfyio")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// prProc is a running nfyio server process.
type prProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	scheme string
	addr   string
	url    string
	stdout *SyncBuffer
	errLog string // stderr (access log and errors) goes to this file
	done   chan struct{}
	err    error // Wait's result once done is closed
}

var prListening = regexp.MustCompile(`listening on (https?)://(\S+),`)

// prEnv is the environment of a child process: the machine's AWS_*
// variables removed, the root key fixed.
func prEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "NFYIO_") {
			env = append(env, kv)
		}
	}
	return append(env, "NFYIO_ROOT_ACCESS_KEY="+RootAccessKey, "NFYIO_ROOT_SECRET_KEY="+RootSecretKey)
}

// prStart runs `nfyio server` on a free loopback port with dataDir and
// waits for its listening line.
func prStart(t *testing.T, bin, dataDir string, args ...string) *prProc {
	t.Helper()
	errLog, err := os.CreateTemp(t.TempDir(), "stderr-*")
	if err != nil {
		t.Fatal(err)
	}
	p := &prProc{t: t, stdout: &SyncBuffer{}, errLog: errLog.Name(), done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"server", "--address", "127.0.0.1:0", "--data", dataDir}, args...)...)
	p.cmd.Env = prEnv()
	p.cmd.Stderr = errLog
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	errLog.Close()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.stdout.Write([]byte(sc.Text() + "\n"))
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				<-p.done
				t.Fatalf("server exited before listening (%v); stdout:\n%s\nstderr:\n%s", p.err, p.stdout, p.stderr())
			}
			if m := prListening.FindStringSubmatch(line); m != nil {
				p.scheme, p.addr = m[1], m[2]
				p.url = p.scheme + "://" + p.addr
				return p
			}
		case <-timeout:
			t.Fatalf("server did not listen within 30s; stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr())
		}
	}
}

func (p *prProc) stderr() string {
	b, _ := os.ReadFile(p.errLog)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// signal sends sig and, for SIGKILL, waits for the process to be gone.
func (p *prProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
	if sig == syscall.SIGKILL {
		<-p.done
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *prProc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("process still running after %v; stderr:\n%s", d, p.stderr())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// client is an SDK client for the process without retries: each
// operation is attempted once, so its outcome is known or in doubt.
func (p *prProc) client(t *testing.T) *s3.Client {
	return (&Server{URL: p.url, Addr: p.addr}).SDK(t, func(o *s3.Options) {
		o.Retryer = aws.NopRetryer{}
	})
}

// --- self-verifying bodies ---

// A crash-test body is "NFYIO" + hex SHA-256 of the payload + payload, so
// any body read back can be checked on its own: a torn or mixed body fails.
const prMagic = "NFYIO"

var prPool = func() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 6<<20)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// prBody makes a unique body of about size bytes and returns it with its
// identity (the embedded hash).
func prBody(r *rand.Rand, size int) ([]byte, string) {
	payload := make([]byte, 16+size)
	binary := fmt.Appendf(nil, "%016x", r.Uint64())
	copy(payload, binary)
	off := r.IntN(len(prPool) - size)
	copy(payload[16:], prPool[off:off+size])
	sum := sha256.Sum256(payload)
	id := hex.EncodeToString(sum[:])
	return append([]byte(prMagic+id), payload...), id
}

// prCheckBody returns the identity of a body read back, or an error when
// it is not one whole body.
func prCheckBody(b []byte) (string, error) {
	n := len(prMagic) + 64
	if len(b) < n || string(b[:len(prMagic)]) != prMagic {
		return "", fmt.Errorf("body of %d bytes has no header", len(b))
	}
	id := string(b[len(prMagic):n])
	sum := sha256.Sum256(b[n:])
	if hex.EncodeToString(sum[:]) != id {
		return "", fmt.Errorf("body of %d bytes does not match its embedded hash: torn or mixed", len(b))
	}
	return id, nil
}

// --- the crash workload ---

const prAbsent = "(absent)"

// prKey is what the test knows of one key. Each key belongs to one worker,
// so its operations are sequential: at most the last one is in doubt.
type prKey struct {
	name    string
	known   string // identity of the acknowledged state, or prAbsent
	pending string // state an operation in doubt would leave; "" when none
}

type prStats struct {
	mu                         sync.Mutex
	puts, deletes, mps, gets   int
	acked, inDoubt, unexpected int
}

func (s *prStats) add(f func(*prStats)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

// prOutcome classifies an SDK error: nil is acknowledged; an HTTP error
// response is a definite refusal; anything else (the process died) leaves
// the operation in doubt.
func prOutcome(err error) (acked, refused bool) {
	if err == nil {
		return true, false
	}
	// The SDK wraps transport failures in a ResponseError too, with no
	// status, and a 200 whose body the kill cut short with status 200:
	// only an error status means the server refused.
	var re *awshttp.ResponseError
	return false, errors.As(err, &re) && re.HTTPStatusCode() >= 300
}

// prMismatch is a read that returned whole but wrong data.
type prMismatch struct{ msg string }

func (e *prMismatch) Error() string { return e.msg }

const prBucket = "crash"

// prWorker mutates its keys until ctx ends or the server goes away.
func prWorker(ctx context.Context, t *testing.T, c *s3.Client, keys []*prKey, seed uint64, st *prStats, killed *atomic.Bool) {
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	for ctx.Err() == nil {
		k := keys[r.IntN(len(keys))]
		var err error
		switch op := r.IntN(100); {
		case op < 45:
			size := r.IntN(60 << 10) // inline
			if r.IntN(2) == 0 {
				size = 64<<10 + r.IntN(1<<20) // a blob
			}
			body, id := prBody(r, size)
			k.pending = id
			_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(prBucket), Key: aws.String(k.name), Body: bytes.NewReader(body)})
			st.add(func(s *prStats) { s.puts++ })
		case op < 60:
			k.pending = prAbsent
			_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(prBucket), Key: aws.String(k.name)})
			st.add(func(s *prStats) { s.deletes++ })
		case op < 75:
			err = prMultipart(ctx, c, k, r)
			st.add(func(s *prStats) { s.mps++ })
		default:
			err = prVerifyLive(ctx, c, k)
			st.add(func(s *prStats) { s.gets++ })
		}
		var bad *prMismatch
		acked, refused := prOutcome(err)
		switch {
		case errors.As(err, &bad):
			t.Errorf("%s: %v", k.name, err)
			return
		case acked:
			if k.pending != "" {
				k.known = k.pending
				st.add(func(s *prStats) { s.acked++ })
			}
			k.pending = ""
		case refused:
			st.add(func(s *prStats) { s.unexpected++ })
			t.Errorf("%s: the server refused an operation: %v", k.name, err)
			k.pending = ""
			return
		default:
			// The process died mid-operation: whether it happened is
			// unknown; the check after restart decides. Before the kill,
			// no request may fail this way.
			if !killed.Load() {
				t.Errorf("%s: failed before the kill: %v", k.name, err)
			}
			st.add(func(s *prStats) { s.inDoubt++ })
			return
		}
	}
}

// prMultipart writes a two-part object (5 MiB + a tail). Only Complete
// changes the key; a crash before it leaves an unfinished upload.
func prMultipart(ctx context.Context, c *s3.Client, k *prKey, r *rand.Rand) error {
	body, id := prBody(r, 5<<20+r.IntN(256<<10))
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(prBucket), Key: aws.String(k.name)})
	if err != nil {
		return err
	}
	var parts []types.CompletedPart
	for i, b := range [][]byte{body[:5<<20], body[5<<20:]} {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(prBucket), Key: aws.String(k.name), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(b)})
		if err != nil {
			return err
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	k.pending = id
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(prBucket), Key: aws.String(k.name), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return err
}

// prRead returns the identity of what key holds (prAbsent when nothing).
func prRead(ctx context.Context, c *s3.Client, key string) (string, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(prBucket), Key: aws.String(key)})
	if apiCode(err) == "NoSuchKey" {
		return prAbsent, nil
	}
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return "", err
	}
	if out.ContentLength != nil && *out.ContentLength != int64(len(b)) {
		return "", &prMismatch{fmt.Sprintf("%s: Content-Length %d but %d bytes", key, *out.ContentLength, len(b))}
	}
	id, err := prCheckBody(b)
	if err != nil {
		// The whole response arrived: a body that fails its own hash
		// is a torn or mixed object.
		return "", &prMismatch{key + ": " + err.Error()}
	}
	return id, nil
}

// prVerifyLive reads a key while the server runs: it must hold exactly the
// last acknowledged state (its worker is the only writer).
func prVerifyLive(ctx context.Context, c *s3.Client, k *prKey) error {
	got, err := prRead(ctx, c, k.name)
	if err != nil {
		return err
	}
	if got != k.known {
		return &prMismatch{fmt.Sprintf("%s holds %.12s, the last acknowledged write was %.12s", k.name, got, k.known)}
	}
	return nil
}

// prFsck checks the stopped store: no record without its blob, contents
// matching their digests. Orphans (blobs of writes the crash cut between
// blob commit and metadata commit) are allowed and returned.
func prFsck(t *testing.T, dataDir string) int {
	t.Helper()
	st, err := fsck.OpenEmbedded(dataDir)
	if err != nil {
		t.Fatalf("fsck open: %v", err)
	}
	defer st.Close()
	rep, err := fsck.Check(context.Background(), st.Meta, st.Blobs, fsck.Options{VerifyContent: true})
	if err != nil {
		t.Fatalf("fsck: %v", err)
	}
	for _, p := range rep.Problems {
		t.Errorf("fsck after SIGKILL: %v", p)
	}
	t.Logf("fsck: %s", rep.Summary())
	return len(rep.Orphans)
}

// prRunFsck runs the fsck subcommand and returns its exit code and output.
func prRunFsck(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"fsck"}, args...)...)
	cmd.Env = prEnv()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("nfyio fsck: %v", err)
	}
	return 0, string(out)
}

// prCrashRounds is the core durability proof: several goroutines PUT,
// overwrite, delete and complete multipart uploads while the server is
// SIGKILLed; after each kill the store is checked offline and every key
// must hold its last acknowledged state or the state of the one operation
// in doubt, never a torn body.
func prCrashRounds(t *testing.T, bin string) {
	dataDir := t.TempDir()
	const workers, keysPerWorker, rounds = 4, 4, 5
	var all []*prKey
	perWorker := make([][]*prKey, workers)
	for w := range workers {
		for j := range keysPerWorker {
			k := &prKey{name: fmt.Sprintf("w%d/key-%d", w, j), known: prAbsent}
			perWorker[w] = append(perWorker[w], k)
			all = append(all, k)
		}
	}
	r := rand.New(rand.NewPCG(42, 43))
	totalAcked := 0
	for round := range rounds {
		p := prStart(t, bin, dataDir)
		c := p.client(t)
		ctx := context.Background()
		if round == 0 {
			mustCreate(t, c, prBucket)
		}
		prCheckAfterRestart(t, ctx, c, all, round)
		if t.Failed() {
			return
		}

		st := &prStats{}
		var killed atomic.Bool
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				prWorker(wctx, t, c, perWorker[w], uint64(round*100+w), st, &killed)
			}()
		}
		// Load for about a second, and long enough for some writes to
		// be acknowledged whatever the machine's speed.
		start, load := time.Now(), time.Duration(600+r.IntN(600))*time.Millisecond
		for time.Since(start) < 20*time.Second {
			st.mu.Lock()
			enough := st.acked >= 10
			st.mu.Unlock()
			if enough && time.Since(start) >= load {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		killed.Store(true)
		p.signal(syscall.SIGKILL)
		stop()
		wg.Wait()
		t.Logf("round %d: %d puts, %d deletes, %d multipart, %d reads; %d writes acknowledged, %d in doubt at the kill",
			round, st.puts, st.deletes, st.mps, st.gets, st.acked, st.inDoubt)
		totalAcked += st.acked
		if t.Failed() {
			t.Logf("server stderr:\n%s", p.stderr())
			return
		}

		// Offline: the library on odd rounds, the command on even ones
		// (repairing, so orphans do not pile up between rounds).
		if round%2 == 1 {
			prFsck(t, dataDir)
		}
		code, out := prRunFsck(t, bin, "--data", dataDir, "--repair", "--grace", "0", "--verify-content")
		if code != 0 {
			t.Fatalf("nfyio fsck --repair exited %d:\n%s", code, out)
		}
		if orphans := prFsck(t, dataDir); orphans != 0 {
			t.Fatalf("%d orphans left after repair", orphans)
		}
	}
	if totalAcked < 10*rounds {
		t.Fatalf("only %d acknowledged writes in %d rounds: the load did not run", totalAcked, rounds)
	}

	// A last start: everything checks, then a clean stop leaves a clean store.
	p := prStart(t, bin, dataDir)
	prCheckAfterRestart(t, context.Background(), p.client(t), all, rounds)
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("SIGTERM exit code %d", code)
	}
	if code, out := prRunFsck(t, bin, "--data", dataDir, "--verify-content"); code != 0 {
		t.Fatalf("fsck after a clean stop exited %d:\n%s", code, out)
	}
}

// prCheckAfterRestart reads every key and the listing after a restart.
func prCheckAfterRestart(t *testing.T, ctx context.Context, c *s3.Client, keys []*prKey, round int) {
	t.Helper()
	exists := map[string]bool{}
	for _, k := range keys {
		got, err := prRead(ctx, c, k.name)
		if err != nil {
			t.Errorf("round %d: read %s: %v", round, k.name, err)
			continue
		}
		if got != k.known && (k.pending == "" || got != k.pending) {
			t.Errorf("round %d: %s holds %.12s; acknowledged %.12s, in doubt %.12q", round, k.name, got, k.known, k.pending)
		}
		k.known, k.pending = got, ""
		exists[k.name] = got != prAbsent
	}
	// The listing shows exactly the keys that exist.
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(prBucket)})
	listed := map[string]bool{}
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("round %d: list: %v", round, err)
		}
		for _, o := range out.Contents {
			listed[aws.ToString(o.Key)] = true
		}
	}
	for name, ok := range exists {
		if ok != listed[name] {
			t.Errorf("round %d: %s exists=%v but listed=%v", round, name, ok, listed[name])
		}
	}
	if len(listed) > len(exists) {
		t.Errorf("round %d: listing has %d keys, the test wrote %d", round, len(listed), len(exists))
	}
}

// prGracefulShutdown: SIGTERM while an upload is in flight. The upload
// completes with 200, new connections are refused meanwhile, the process
// exits 0 and the object is there after a restart.
func prGracefulShutdown(t *testing.T, bin string) {
	dataDir := t.TempDir()
	p := prStart(t, bin, dataDir)
	c := p.client(t)
	mustCreate(t, c, "drain")

	body := randBytes(2 << 20)
	conn := prOpenUpload(t, p.addr, "/drain/slow", int64(len(body)))
	// The handler asked for the body (100 Continue): the request is in
	// flight. Half the body now, SIGTERM, then the rest.
	if _, err := conn.Write(body[:1<<20]); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGTERM)
	prWaitRefused(t, p.addr)
	select {
	case <-p.done:
		t.Fatal("the process exited with an upload in flight")
	default:
	}
	if _, err := conn.Write(body[1<<20:]); err != nil {
		t.Fatalf("finishing the upload after SIGTERM: %v", err)
	}
	resp := prReadResponse(t, conn, "PUT")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload during shutdown: %s", resp.Status)
	}
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; stderr:\n%s", code, p.stderr())
	}
	if !strings.Contains(p.stdout.String(), "shutting down") {
		t.Errorf("no shutdown message in stdout:\n%s", p.stdout)
	}
	p2 := prStart(t, bin, dataDir)
	got := getBody(t, p2.client(t), "drain", "slow")
	if !bytes.Equal(got, body) {
		t.Fatalf("object after restart: %d bytes, want the %d uploaded", len(got), len(body))
	}
	p2.signal(syscall.SIGTERM)
	p2.wait(30 * time.Second)
}

// prFsckLocked: fsck on the data dir of a running server refuses to run.
func prFsckLocked(t *testing.T, bin string) {
	dataDir := t.TempDir()
	p := prStart(t, bin, dataDir)
	code, out := prRunFsck(t, bin, "--data", dataDir, "--repair", "--grace", "0")
	if code != 2 || !strings.Contains(out, "server running") {
		t.Fatalf("fsck on a live store: exit %d:\n%s", code, out)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if code, out := prRunFsck(t, bin, "--data", dataDir); code != 0 {
		t.Fatalf("fsck of a stopped fresh store: exit %d:\n%s", code, out)
	}
	if code, out := prRunFsck(t, bin, "--data", t.TempDir()); code != 2 || !strings.Contains(out, "no store") {
		t.Fatalf("fsck of an empty dir: exit %d:\n%s", code, out)
	}
}
