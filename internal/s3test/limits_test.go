package s3test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"nfyio.dev/storage/internal/server"
	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/storage/boltmeta"
)

// --- raw HTTP/1.1 requests, for what no client library sends ---

// prHead returns the header block of a SigV4-signed request (root key,
// UNSIGNED-PAYLOAD) whose body the test writes itself. size < 0 leaves
// Content-Length out; extra lines are appended after signing, unsigned.
func prHead(t *testing.T, host, method, path string, size int64, hdr http.Header, extra ...string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+host+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if size > 0 {
		req.ContentLength = size
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	creds := aws.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", "s3", Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, req.URL.RequestURI(), host)
	if err := req.Header.Write(&b); err != nil {
		t.Fatal(err)
	}
	if size >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", size)
	}
	for _, l := range extra {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// prConn is a raw connection with a reader for its responses.
type prConn struct {
	net.Conn
	br *bufio.Reader
}

func prDial(t *testing.T, addr string) *prConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &prConn{Conn: c, br: bufio.NewReader(c)}
}

// prOpenUpload starts a PUT of size bytes with Expect: 100-continue and
// returns once the server answered 100 Continue, which net/http does when
// the handler first reads the body: the request is then in its handler.
func prOpenUpload(t *testing.T, addr, path string, size int64) *prConn {
	t.Helper()
	c := prDial(t, addr)
	if _, err := c.Write(prHead(t, addr, "PUT", path, size, http.Header{"Expect": {"100-continue"}})); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue, got %q, %v", line, err)
	}
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	return c
}

// prReadResponse reads one response from c.
func prReadResponse(t *testing.T, c *prConn, method string) *http.Response {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// prWaitRefused dials addr until the connection is refused.
func prWaitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if errors.Is(err, syscall.ECONNRESET) {
			// A connection caught in the backlog while the listener
			// closes is reset; look again for the closed port.
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial after SIGTERM: %v, want connection refused", err)
			}
			return
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("new connections were still accepted 15s after SIGTERM")
}

// prBlobFiles counts committed blob files of an embedded store, and
// temporary files left in its tmp directory; on the other backends, the
// blobs the store lists (they keep no temporary files here).
func prBlobFiles(t *testing.T, srv *Server) (blobs, tmp int) {
	t.Helper()
	if !srv.Embedded() {
		return len(srv.BlobRefs(t)), 0
	}
	root := filepath.Join(srv.DataDir, "blobs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "LOCK" {
			return err
		}
		if filepath.Base(filepath.Dir(p)) == "tmp" {
			tmp++
		} else {
			blobs++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return blobs, tmp
}

func prWantCode(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	got := ErrorCode(t, resp)
	if resp.StatusCode != status || got != code {
		t.Fatalf("want %d %s, got %d %q", status, code, resp.StatusCode, got)
	}
}

// --- connection limits ---

// TestSlowClientsAreCut: a client that dribbles its headers is cut at the
// header timeout without an answer, an idle keep-alive connection is
// closed, and an oversized header block is refused; the server keeps
// serving others.
func TestSlowClientsAreCut(t *testing.T) {
	NoEnv(t)
	srv := Start(t, func(c *server.Config) {
		c.ReadHeaderTimeout = 500 * time.Millisecond
		c.IdleTimeout = 500 * time.Millisecond
	})
	c := prDial(t, srv.Addr)
	head := prHead(t, srv.Addr, "GET", "/", -1, http.Header{"X-Padding": {strings.Repeat("p", 200)}})
	closed := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c) // returns when the server closes
		closed <- b
	}()
	sent := 0
	var got []byte
dribble:
	for ; sent < len(head); sent++ {
		select {
		case got = <-closed:
			break dribble
		default:
		}
		if _, err := c.Write(head[sent : sent+1]); err != nil {
			got = <-closed
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if sent == len(head) {
		t.Fatalf("the server waited for all %d header bytes sent one at a time", len(head))
	}
	// net/http closes the connection, with at most a 400 (never a
	// response of the handler: the request was never read).
	if len(got) != 0 && !bytes.HasPrefix(got, []byte("HTTP/1.1 400 ")) {
		t.Errorf("a cut slow client got an answer: %q", got)
	}
	t.Logf("cut after %d of %d header bytes", sent, len(head))

	// An idle keep-alive connection is closed by the server.
	k := prDial(t, srv.Addr)
	if _, err := k.Write(prHead(t, srv.Addr, "GET", "/", -1, nil)); err != nil {
		t.Fatal(err)
	}
	resp := prReadResponse(t, k, "GET")
	if resp.StatusCode != 200 {
		t.Fatalf("list buckets: %s", resp.Status)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	_ = k.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := k.br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("idle connection: read %d, %v; want EOF from the server", n, err)
	}

	// A header block past the limit is refused by net/http.
	big := prDial(t, srv.Addr)
	if _, err := big.Write(prHead(t, srv.Addr, "GET", "/", -1, http.Header{"X-Big": {strings.Repeat("b", 100<<10)}})); err != nil {
		t.Fatal(err)
	}
	if resp := prReadResponse(t, big, "GET"); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("100 KiB of headers: %s, want 431", resp.Status)
	}

	if resp := srv.Signed(t, "GET", "/", nil, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("server unusable after slow clients: %s", resp.Status)
	}
}

// TestAmbiguousFraming: requests whose length is ambiguous never store
// anything. net/http refuses conflicting Content-Length headers with 400;
// Transfer-Encoding: chunked with a Content-Length is read as chunked (RFC
// 9112 §6.3: Transfer-Encoding wins, Content-Length is dropped), which
// leaves a PUT without a length: 411 MissingContentLength, like S3.
func TestAmbiguousFraming(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	mustCreate(t, c, "frame")

	conflict := prDial(t, srv.Addr)
	req := prHead(t, srv.Addr, "PUT", "/frame/two-lengths", 5, nil, "Content-Length: 6")
	if _, err := conflict.Write(append(req, "hello!"...)); err != nil {
		t.Fatal(err)
	}
	if resp := prReadResponse(t, conflict, "PUT"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("two Content-Lengths: %s, want 400", resp.Status)
	}

	smuggle := prDial(t, srv.Addr)
	req = prHead(t, srv.Addr, "PUT", "/frame/te-and-cl", -1, nil, "Content-Length: 5", "Transfer-Encoding: chunked")
	if _, err := smuggle.Write(append(req, "5\r\nhello\r\n0\r\n\r\n"...)); err != nil {
		t.Fatal(err)
	}
	prWantCode(t, prReadResponse(t, smuggle, "PUT"), http.StatusLengthRequired, "MissingContentLength")

	badTE := prDial(t, srv.Addr)
	req = prHead(t, srv.Addr, "PUT", "/frame/gzip-te", 5, nil, "Transfer-Encoding: gzip")
	if _, err := badTE.Write(append(req, "hello"...)); err != nil {
		t.Fatal(err)
	}
	if resp := prReadResponse(t, badTE, "PUT"); resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("Transfer-Encoding gzip: %s, want 501", resp.Status)
	}

	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("frame")})
	if err != nil || len(out.Contents) != 0 {
		t.Fatalf("ambiguous requests stored %d objects (%v)", len(out.Contents), err)
	}
}

// TestShortBody: a body shorter than its Content-Length (the client
// stops sending) stores nothing and leaves the previous object intact,
// whether the client waits for the answer or goes away.
func TestShortBody(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "short")
	old := randBytes(300 << 10)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("short"), Key: aws.String("k"), Body: bytes.NewReader(old)}); err != nil {
		t.Fatal(err)
	}
	blobsBefore, _ := prBlobFiles(t, srv)

	// Half a body, then the client's side of the connection closes: the
	// server sees EOF early and answers IncompleteBody.
	half := prOpenUpload(t, srv.Addr, "/short/k", 1<<20)
	if _, err := half.Write(randBytes(512 << 10)); err != nil {
		t.Fatal(err)
	}
	if err := half.Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	prWantCode(t, prReadResponse(t, half, "PUT"), http.StatusBadRequest, "IncompleteBody")

	// The client vanishes mid-body.
	gone := prOpenUpload(t, srv.Addr, "/short/k", 1<<20)
	if _, err := gone.Write(randBytes(256 << 10)); err != nil {
		t.Fatal(err)
	}
	gone.Close()
	// Wait for the server to have finished with it (its access log line).
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(srv.Log.String(), `"error":"IncompleteBody"`) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned upload was never logged:\n%s", srv.Log)
		}
		time.Sleep(20 * time.Millisecond)
	}

	if got := getBody(t, c, "short", "k"); !bytes.Equal(got, old) {
		t.Fatalf("previous object damaged: %d bytes", len(got))
	}
	if srv.Embedded() {
		blobs, tmp := prBlobFiles(t, srv)
		if blobs != blobsBefore || tmp != 0 {
			t.Fatalf("incomplete uploads left %d blobs (had %d) and %d temporary files", blobs, blobsBefore, tmp)
		}
	}
}

// TestConcurrencyCap: past --max-concurrent requests in flight, S3
// requests get 503 SlowDown (which SDKs retry with back-off); the admin
// listener's health checks still answer; capacity returns when the slow
// requests finish.
func TestConcurrencyCap(t *testing.T) {
	NoEnv(t)
	srv := Start(t, func(c *server.Config) { c.MaxConcurrent = 2 })
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Srv.ServeAdmin(aln) }()
	c := srv.SDK(t)
	mustCreate(t, c, "cap")

	// Two uploads inside their handlers, holding both slots.
	bodies := [][]byte{randBytes(64 << 10), randBytes(64 << 10)}
	var slow []*prConn
	for i := range bodies {
		slow = append(slow, prOpenUpload(t, srv.Addr, fmt.Sprintf("/cap/slow-%d", i), int64(len(bodies[i]))))
	}
	resp := srv.Signed(t, "GET", "/cap", nil, nil, "")
	prWantCode(t, resp, http.StatusServiceUnavailable, "SlowDown")
	hr, err := http.Get("http://" + aln.Addr().String() + "/health/live")
	if err != nil || hr.StatusCode != 200 {
		t.Fatalf("admin liveness under saturation: %v %v", hr, err)
	}
	hr.Body.Close()
	if got := prMetrics(t, "http://"+aln.Addr().String()+"/metrics")["nfyio_requests_in_flight"]; got != 2 {
		t.Errorf("requests in flight: %v, want the 2 slow uploads", got)
	}

	for i, sc := range slow {
		if _, err := sc.Write(bodies[i]); err != nil {
			t.Fatal(err)
		}
		if resp := prReadResponse(t, sc, "PUT"); resp.StatusCode != 200 {
			t.Fatalf("slow upload %d: %s", i, resp.Status)
		}
	}
	if resp := srv.Signed(t, "GET", "/cap", nil, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("after the slow requests: %s", resp.Status)
	}
	for i := range bodies {
		if got := getBody(t, c, "cap", fmt.Sprintf("slow-%d", i)); !bytes.Equal(got, bodies[i]) {
			t.Fatalf("slow-%d stored wrong", i)
		}
	}
}

// --- XML bodies ---

func prMD5Header(body []byte) http.Header {
	sum := md5.Sum(body)
	return http.Header{"Content-Md5": {base64.StdEncoding.EncodeToString(sum[:])}}
}

// TestXMLBombs: entity expansion, oversized and deeply nested documents
// are refused before they cost memory or change anything.
func TestXMLBombs(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "xml")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("xml"), Key: aws.String("lol"), Body: strings.NewReader("still here")}); err != nil {
		t.Fatal(err)
	}

	var laughs strings.Builder
	laughs.WriteString(`<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">`)
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&laughs, `<!ENTITY lol%d "%s">`, i, strings.Repeat(fmt.Sprintf("&lol%d;", i-1), 10))
	}
	laughs.WriteString(`]><Delete><Object><Key>&lol9;</Key></Object><Object><Key>lol</Key></Object></Delete>`)
	deep := "<Delete>" + strings.Repeat("<Object>", 10000) + strings.Repeat("</Object>", 10000) + "</Delete>"
	// 5 MiB of well-formed keys: past the 4 MiB bound on any XML body.
	var huge bytes.Buffer
	huge.WriteString("<Delete>")
	for huge.Len() < 5<<20 {
		huge.WriteString("<Object><Key>" + strings.Repeat("k", 1000) + "</Key></Object>")
	}
	huge.WriteString("</Delete>")

	for _, tc := range []struct {
		name, code string
		body       []byte
	}{
		{"billion laughs", "MalformedXML", []byte(laughs.String())},
		{"10,000 levels deep", "MalformedXML", []byte(deep)},
		{"5 MiB", "MaxMessageLengthExceeded", huge.Bytes()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := srv.Signed(t, "POST", "/xml?delete", tc.body, prMD5Header(tc.body), "")
			prWantCode(t, resp, http.StatusBadRequest, tc.code)
		})
	}

	// The same bomb in CompleteMultipartUpload and CreateBucket bodies.
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("xml"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	complete := strings.Replace(laughs.String(), "<Delete><Object><Key>&lol9;</Key></Object><Object><Key>lol</Key></Object></Delete>",
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&lol9;</ETag></Part></CompleteMultipartUpload>", 1)
	resp := srv.Signed(t, "POST", "/xml/mp?uploadId="+aws.ToString(up.UploadId), []byte(complete), nil, "")
	prWantCode(t, resp, http.StatusBadRequest, "MalformedXML")
	create := strings.Replace(laughs.String(), "<Delete><Object><Key>&lol9;</Key></Object><Object><Key>lol</Key></Object></Delete>",
		"<CreateBucketConfiguration><LocationConstraint>&lol9;</LocationConstraint></CreateBucketConfiguration>", 1)
	resp = srv.Signed(t, "PUT", "/lolbucket", []byte(create), nil, "")
	prWantCode(t, resp, http.StatusBadRequest, "MalformedXML")

	// Nothing changed.
	if got := getBody(t, c, "xml", "lol"); string(got) != "still here" {
		t.Fatalf("object after the bombs: %q", got)
	}
	if _, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("xml"), Key: aws.String("mp"), UploadId: up.UploadId}); err != nil {
		t.Fatalf("upload gone after a refused complete: %v", err)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("lolbucket")}); err == nil {
		t.Fatal("a bucket was created from a refused body")
	}
}

// --- object size limits ---

// TestObjectSizeLimits: a single PUT declaring more than 5 GiB is refused
// from its headers, and completing a multipart upload whose parts add up
// to more than 5 TiB is refused with the upload left as it was.
func TestObjectSizeLimits(t *testing.T) {
	NoEnv(t)
	dataDir := t.TempDir()
	srv := Start(t, func(c *server.Config) { c.DataDir = dataDir })
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "big")

	// Expect: 100-continue, as clients send before large bodies: the
	// refusal comes from the headers alone.
	conn := prDial(t, srv.Addr)
	if _, err := conn.Write(prHead(t, srv.Addr, "PUT", "/big/too-large", 5<<30+1, http.Header{"Expect": {"100-continue"}})); err != nil {
		t.Fatal(err)
	}
	prWantCode(t, prReadResponse(t, conn, "PUT"), http.StatusBadRequest, "EntityTooLarge")

	if !srv.Embedded() {
		return // the rest edits the embedded metadata file
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("huge")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("big"), Key: aws.String("huge"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: strings.NewReader("tiny")})
	if err != nil {
		t.Fatal(err)
	}
	// Uploading 5 TiB is out of reach of a test: with the server stopped,
	// record 1,025 more parts of 5 GiB that share the first part's blob.
	if err := srv.Srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := boltmeta.Open(filepath.Join(dataDir, "meta.db"), boltmeta.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	parts, _, err := db.ListParts(ctx, "big", "huge", aws.ToString(up.UploadId), 0, 10)
	if err != nil || len(parts) != 1 {
		t.Fatalf("list parts: %v %v", parts, err)
	}
	completed := []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}
	for n := 2; n <= 1026; n++ {
		p := parts[0]
		p.Number, p.Size = n, 5<<30
		if _, err := db.PutPart(ctx, "big", "huge", aws.ToString(up.UploadId), p); err != nil {
			t.Fatal(err)
		}
		completed = append(completed, types.CompletedPart{PartNumber: aws.Int32(int32(n)), ETag: part.ETag})
	}
	// The last part may be small; put the tiny one last instead.
	completed = append(completed[1:], types.CompletedPart{PartNumber: aws.Int32(1027), ETag: part.ETag})
	p := parts[0]
	p.Number = 1027
	if _, err := db.PutPart(ctx, "big", "huge", aws.ToString(up.UploadId), p); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	srv2 := Start(t, func(c *server.Config) { c.DataDir = dataDir })
	c2 := srv2.SDK(t)
	_, err = c2.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("huge"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed}})
	wantCode(t, err, "EntityTooLarge")
	if _, err := c2.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("big"), Key: aws.String("huge")}); err == nil {
		t.Fatal("an object over 5 TiB was created")
	}
	if _, err := c2.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("big"), Key: aws.String("huge"), UploadId: up.UploadId}); err != nil {
		t.Fatalf("the upload went away: %v", err)
	}
}

// --- full disk ---

// prDisk wraps a blob store with a disk that has a given amount of free
// space: writes past it fail as a full file system does (ENOSPC, which
// backends report as storage.ErrStorageFull).
type prDisk struct {
	storage.Blobs
	mu   sync.Mutex
	free int64 // < 0: unlimited
}

func (d *prDisk) setFree(n int64) {
	d.mu.Lock()
	d.free = n
	d.mu.Unlock()
}

func (d *prDisk) take(n int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.free < 0 {
		return true
	}
	if int64(n) > d.free {
		d.free = 0
		return false
	}
	d.free -= int64(n)
	return true
}

func (d *prDisk) Create(ctx context.Context, sizeHint int64) (storage.BlobWriter, error) {
	w, err := d.Blobs.Create(ctx, sizeHint)
	if err != nil {
		return nil, err
	}
	return &prDiskWriter{BlobWriter: w, d: d}, nil
}

type prDiskWriter struct {
	storage.BlobWriter
	d *prDisk
}

func (w *prDiskWriter) Write(p []byte) (int, error) {
	if !w.d.take(len(p)) {
		return 0, fmt.Errorf("write blob: %w: %w", storage.ErrStorageFull, &fs.PathError{Op: "write", Path: "blob", Err: syscall.ENOSPC})
	}
	return w.BlobWriter.Write(p)
}

// TestDiskFull: when writes fail with ENOSPC, PUT and UploadPart answer
// 507 InsufficientStorage (what S3-compatible stores send; AWS itself
// never runs out), the previous object stays intact, nothing is left
// behind, and the store works again as soon as space returns.
func TestDiskFull(t *testing.T) {
	NoEnv(t)
	disk := &prDisk{free: -1}
	srv := Start(t, func(c *server.Config) {
		c.WrapBlobs = func(b storage.Blobs) storage.Blobs { disk.Blobs = b; return disk }
	})
	c := srv.SDK(t, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	mustCreate(t, c, "full")
	v1 := randBytes(200 << 10)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("full"), Key: aws.String("k"), Body: bytes.NewReader(v1)}); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("full"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	blobsBefore, _ := prBlobFiles(t, srv)

	disk.setFree(64 << 10)
	v2 := randBytes(1 << 20)
	resp := srv.Signed(t, "PUT", "/full/k", v2, nil, "")
	prWantCode(t, resp, http.StatusInsufficientStorage, "InsufficientStorage")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("full"), Key: aws.String("k"), Body: bytes.NewReader(v2)})
	wantCode(t, err, "InsufficientStorage")
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("full"), Key: aws.String("mp"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(v2)})
	wantCode(t, err, "InsufficientStorage")
	if got := getBody(t, c, "full", "k"); !bytes.Equal(got, v1) {
		t.Fatalf("previous object damaged by a failed write: %d bytes", len(got))
	}
	if srv.Embedded() {
		if blobs, tmp := prBlobFiles(t, srv); blobs != blobsBefore || tmp != 0 {
			t.Fatalf("failed writes left %d blobs (had %d) and %d temporary files", blobs, blobsBefore, tmp)
		}
	}
	if !strings.Contains(srv.Log.String(), "storage full") {
		t.Error("the cause of the 507 was not logged")
	}

	// Space returns: no restart, no operator action.
	disk.setFree(-1)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("full"), Key: aws.String("k"), Body: bytes.NewReader(v2)}); err != nil {
		t.Fatalf("PUT once space returned: %v", err)
	}
	if got := getBody(t, c, "full", "k"); !bytes.Equal(got, v2) {
		t.Fatal("new object wrong after recovery")
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("full"), Key: aws.String("mp"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(v2)}); err != nil {
		t.Fatalf("UploadPart once space returned: %v", err)
	}
}

// --- the binary's flags (run from TestRealProcess) ---

var prAdminLine = regexp.MustCompile(`metrics and health checks on http://(\S+)`)

// prTLSAndAdminFlags: --tls-self-signed serves HTTPS with HTTP/2 and keeps
// its certificate across restarts; --admin-addr serves metrics and health.
func prTLSAndAdminFlags(t *testing.T, bin string) {
	dataDir := t.TempDir()
	p := prStart(t, bin, dataDir, "--tls-self-signed", "--admin-addr", "127.0.0.1:0")
	if p.scheme != "https" {
		t.Fatalf("listening line says %s", p.scheme)
	}
	var m []string
	for deadline := time.Now().Add(15 * time.Second); m == nil; time.Sleep(10 * time.Millisecond) {
		if m = prAdminLine.FindStringSubmatch(p.stdout.String()); m == nil && time.Now().After(deadline) {
			t.Fatalf("no admin listener line:\n%s", p.stdout)
		}
	}
	admin := "http://" + m[1]
	certPEM, err := os.ReadFile(filepath.Join(dataDir, "tls-self-signed.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("self-signed certificate does not parse")
	}
	h2 := prHTTP2Client(pool)
	resp, err := h2.Get(p.url + "/_nfyio/health/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("health over TLS: %s %s", resp.Proto, resp.Status)
	}
	c := (&Server{URL: p.url, Addr: p.addr}).SDK(t, func(o *s3.Options) { o.HTTPClient = h2 })
	mustCreate(t, c, "tls")
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("tls"), Key: aws.String("k"), Body: strings.NewReader("over h2")}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/health/live":  "ok",
		"/health/ready": "ready",
		"/metrics":      `nfyio_requests_total{op="PutObject",status="200"} 1`,
	} {
		resp, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("admin %s: %s, want %q in:\n%.2000s", path, resp.Status, want, b)
		}
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	p2 := prStart(t, bin, dataDir, "--tls-self-signed")
	again, err := os.ReadFile(filepath.Join(dataDir, "tls-self-signed.crt"))
	if err != nil || !bytes.Equal(again, certPEM) {
		t.Fatalf("the self-signed certificate changed across a restart (%v)", err)
	}
	if got := getBody(t, (&Server{URL: p2.url, Addr: p2.addr}).SDK(t, func(o *s3.Options) { o.HTTPClient = h2 }), "tls", "k"); string(got) != "over h2" {
		t.Fatalf("object after restart: %q", got)
	}
}

// prHTTP2Client speaks only HTTP/2 over TLS, trusting roots.
func prHTTP2Client(roots *x509.CertPool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
