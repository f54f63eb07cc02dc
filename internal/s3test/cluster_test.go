package s3test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"nfyio.dev/storage/internal/childproc"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"nfyio.dev/storage/internal/server"
	"nfyio.dev/storage/internal/testpg"
	"nfyio.dev/storage/internal/testweed"
	"nfyio.dev/storage/presign"
)

// This file proves the scale-out deployment: several nfyio processes that
// share one PostgreSQL and one SeaweedFS behind a round-robin nginx behave
// as one store, and losing a node loses nothing acknowledged and shows
// nothing half-written. It also runs the two mixed deployments (embedded
// metadata with SeaweedFS blobs, PostgreSQL metadata with local blobs).

// clusterBucket is the bucket every cluster subtest works in.
const clusterBucket = "cluster"

// clusterChunk is the SeaweedFS chunk size the nodes are configured with
// (through the blob store URL): small, so that every large object and part
// is several SeaweedFS files and a killed upload has whole chunks stored.
const clusterChunk = "1MiB"

// clNode is one `nfyio server` process of the cluster.
type clNode struct {
	name    string
	dataDir string
	url     string // http://127.0.0.1:PORT
	addr    string
	cmd     *exec.Cmd
	stdout  *SyncBuffer
	errLog  string
	done    chan struct{}
}

// clStartNode runs `nfyio server` on a free loopback port with its own data
// dir and the shared stores, and waits for its listening line.
func clStartNode(t *testing.T, bin, name, dataDir string, env []string, args ...string) (*clNode, error) {
	errLog, err := os.Create(filepath.Join(t.TempDir(), name+".stderr"))
	if err != nil {
		return nil, err
	}
	defer errLog.Close()
	n := &clNode{name: name, dataDir: dataDir, stdout: &SyncBuffer{}, errLog: errLog.Name(), done: make(chan struct{})}
	n.cmd = exec.Command(bin, append([]string{"server", "--address", "127.0.0.1:0", "--data", dataDir}, args...)...)
	n.cmd.Env = env
	n.cmd.Stderr = errLog
	out, err := n.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := childproc.Start(n.cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n.stdout.Write([]byte(sc.Text() + "\n"))
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	var waitErr error
	go func() {
		waitErr = n.cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(n.kill)
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				<-n.done
				return nil, fmt.Errorf("%s exited before listening (%v); stdout:\n%s\nstderr:\n%s", name, waitErr, n.stdout, n.stderr())
			}
			if m := prListening.FindStringSubmatch(line); m != nil {
				n.addr = m[2]
				n.url = m[1] + "://" + n.addr
				return n, nil
			}
		case <-timeout:
			return nil, fmt.Errorf("%s did not listen within 30s; stdout:\n%s\nstderr:\n%s", name, n.stdout, n.stderr())
		}
	}
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (n *clNode) kill() {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Kill()
	<-n.done
}

func (n *clNode) stderr() string {
	b, _ := os.ReadFile(n.errLog)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// server is the node as the harness's clients see it.
func (n *clNode) server() *Server { return &Server{URL: n.url, Addr: n.addr} }

// client is an SDK client for the node without retries: a refusal or a
// dead node shows as it is.
func (n *clNode) client(t *testing.T) *s3.Client {
	return n.server().SDK(t, func(o *s3.Options) { o.Retryer = aws.NopRetryer{} })
}

// clNginx is nginx with a round-robin upstream of the nodes, configured as
// docs/deploy.md tells operators to.
type clNginx struct {
	addr string
	dir  string
}

func clStartNginx(t *testing.T, upstreams ...string) *clNginx {
	t.Helper()
	bin := nginxPath(t)
	dir := t.TempDir()
	addr := FreePort(t)
	var servers strings.Builder
	for _, u := range upstreams {
		// One failed connection takes a node out of the rotation for
		// fail_timeout; idempotent requests that met it are retried on
		// the next node (proxy_next_upstream's default "error timeout").
		fmt.Fprintf(&servers, "        server %s max_fails=1 fail_timeout=30s;\n", u)
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 512; }
http {
    log_format upstream '$request_method $uri $status upstream=$upstream_addr';
    access_log %[1]s/access.log upstream;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream nfyio {
%[3]s        keepalive 16;
    }
    server {
        listen %[2]s;
        client_max_body_size 0;
        location / {
            proxy_pass http://nfyio;
            proxy_set_header Host $http_host;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_connect_timeout 2s;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }
    }
}
`, dir, addr, servers.String())
	runNginx(t, bin, dir, addr, conf)
	return &clNginx{addr: addr, dir: dir}
}

func (ng *clNginx) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(ng.dir, "error.log"))
	return string(b)
}

func (ng *clNginx) accessLog() string {
	b, _ := os.ReadFile(filepath.Join(ng.dir, "access.log"))
	return string(b)
}

func (ng *clNginx) server() *Server { return &Server{URL: "http://" + ng.addr, Addr: ng.addr} }

// clCluster is two nodes, nginx in front, and what they share.
type clCluster struct {
	bin   string
	dsn   string
	blobs string
	env   []string
	a, b  *clNode
	ng    *clNginx
}

// clStart starts the shared stores, two nodes at once (so that they race
// on the schema migration and on adopting the root key, as a rolling
// deployment does) and nginx.
func clStart(t *testing.T) *clCluster {
	t.Helper()
	nginxPath(t) // skip before starting anything if there is no nginx
	c := &clCluster{dsn: testpg.Start(t)}
	master := testweed.Start(t)
	// A collection of its own keeps the cluster's volumes apart from the
	// other tests' on the shared SeaweedFS.
	c.blobs = "seaweedfs://" + strings.TrimPrefix(master, "http://") + "?collection=cluster&chunkSize=" + clusterChunk
	c.bin = prBuild(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	c.env = append(prEnv(), "NFYIO_MASTER_KEY="+base64.StdEncoding.EncodeToString(key))

	var wg sync.WaitGroup
	nodes := make([]*clNode, 2)
	errs := make([]error, 2)
	for i, name := range []string{"A", "B"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = clStartNode(t, c.bin, name, t.TempDir(), c.env, "--meta", c.dsn, "--blobs", c.blobs)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.a, c.b = nodes[0], nodes[1]
	c.ng = clStartNginx(t, c.a.addr, c.b.addr)
	t.Logf("node A %s, node B %s, nginx %s", c.a.url, c.b.url, c.ng.addr)
	return c
}

// TestCluster is the scale-out proof: two nfyio processes on PostgreSQL and
// SeaweedFS, nginx round-robin in front.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a cluster")
	}
	// The cluster brings its own PostgreSQL and SeaweedFS whatever the
	// suite's backend is; the default run and the scale-out run are enough.
	if b := Backend(); b != "embedded" && b != "postgres+seaweedfs" {
		t.Skipf("backend %s: the cluster test runs in the embedded and postgres+seaweedfs passes", b)
	}
	NoEnv(t)
	c := clStart(t)
	mustCreate(t, c.a.client(t), clusterBucket)

	// The subtests run in order on one cluster and build on each other
	// (objects written early are read after the node is killed), so run
	// them together: -run TestCluster.
	survivor := randBytes(3<<20 + 12345)
	t.Run("put on A, presigned GET on B and through nginx", func(t *testing.T) { clCrossNode(t, c, survivor) })
	t.Run("multipart parts on both nodes, completed through nginx", func(t *testing.T) { clMultipart(t, c) })
	t.Run("listing identical on both nodes", func(t *testing.T) { clListing(t, c) })
	t.Run("key disabled on A is refused by B", func(t *testing.T) { clKeyRevocation(t, c) })
	t.Run("one-time URL used on both nodes at once", func(t *testing.T) { clOnce(t, c) })
	t.Run("node killed mid-upload", func(t *testing.T) { clKillNode(t, c, survivor) })
}

// clSigner mints root-key URLs for endpoint.
func clSigner(endpoint string) *presign.Signer {
	return &presign.Signer{Endpoint: endpoint, Region: Region,
		Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}}
}

// clGet sends a presigned GET and checks it returns want.
func clGet(t *testing.T, what string, client *http.Client, rawURL string, hdr http.Header, want []byte) {
	t.Helper()
	resp, body := psSend(t, client, "GET", rawURL, hdr, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d: %s", what, resp.StatusCode, body)
	}
	if !bytes.Equal(body, want) {
		t.Fatalf("%s: got %d bytes, not the %d written", what, len(body), len(want))
	}
}

// clUpstreams returns the upstream addresses nginx logged for requests
// whose log line contains substr.
func clUpstreams(ng *clNginx, substr string) map[string]int {
	seen := map[string]int{}
	for _, line := range strings.Split(ng.accessLog(), "\n") {
		if !strings.Contains(line, substr) {
			continue
		}
		_, up, ok := strings.Cut(line, "upstream=")
		if !ok {
			continue
		}
		// A retried request logs "first, second".
		for _, a := range strings.Split(up, ",") {
			seen[strings.TrimSpace(a)]++
		}
	}
	return seen
}

func clCrossNode(t *testing.T, c *clCluster, survivor []byte) {
	ctx := context.Background()
	small := []byte("inline: kept in the metadata record, not in SeaweedFS")
	for key, body := range map[string][]byte{"survivor.bin": survivor, "small.txt": small} {
		if _, err := c.a.client(t).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(clusterBucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("PUT %s on A: %v", key, err)
		}
		u := psPresign(t, clSigner(c.b.url), clusterBucket, key, presign.Options{})
		clGet(t, "presigned GET of "+key+" on B", psClient, u.URL, nil, body)
		// Through nginx the URL is signed for nginx's host, which nginx
		// passes on; round robin sends the GETs to both nodes.
		u = psPresign(t, clSigner(c.ng.server().URL), clusterBucket, key, presign.Options{})
		for i := range 4 {
			clGet(t, fmt.Sprintf("presigned GET %d of %s through nginx", i, key), psClient, u.URL, nil, body)
		}
	}
	seen := clUpstreams(c.ng, "GET /"+clusterBucket+"/survivor.bin 200")
	if seen[c.a.addr] == 0 || seen[c.b.addr] == 0 {
		t.Fatalf("nginx sent the GETs to %v, want both %s and %s", seen, c.a.addr, c.b.addr)
	}

	// A presigned PUT through nginx lands on one node; both serve it.
	body := randBytes(2<<20 + 7)
	u := psPresign(t, clSigner(c.ng.server().URL), clusterBucket, "via-nginx.bin", presign.Options{Method: "PUT"})
	resp, rb := psSend(t, psClient, "PUT", u.URL, u.Headers, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("presigned PUT through nginx: %d %s", resp.StatusCode, rb)
	}
	for _, n := range []*clNode{c.a, c.b} {
		if got := getBody(t, n.client(t), clusterBucket, "via-nginx.bin"); !bytes.Equal(got, body) {
			t.Fatalf("GET on %s after a PUT through nginx: %d bytes, want %d", n.name, len(got), len(body))
		}
	}
}

func clMultipart(t *testing.T, c *clCluster) {
	ctx := context.Background()
	const key = "multi/part ü.bin"
	data := randBytes(3*5<<20 + 777)
	parts := mpSplit(data, 5<<20)
	viaNginx := c.ng.server().SDK(t)
	up, err := viaNginx.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(clusterBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	// Parts alternate between the nodes, and go up at the same time: the
	// upload's record is shared, not held by the node that created it.
	nodes := []*clNode{c.a, c.b}
	etags := make([]string, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := nodes[i%2].client(t).UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(clusterBucket), Key: aws.String(key),
				UploadId: up.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
			if err != nil {
				errs[i] = fmt.Errorf("part %d on %s: %w", i+1, nodes[i%2].name, err)
				return
			}
			etags[i] = aws.ToString(out.ETag)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each node lists every part, whichever node received it.
	for _, n := range nodes {
		lp, err := n.client(t).ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(clusterBucket), Key: aws.String(key), UploadId: up.UploadId})
		if err != nil {
			t.Fatalf("ListParts on %s: %v", n.name, err)
		}
		if len(lp.Parts) != len(parts) {
			t.Fatalf("ListParts on %s: %d parts, want %d", n.name, len(lp.Parts), len(parts))
		}
	}
	var done []types.CompletedPart
	for i, e := range etags {
		done = append(done, mpPart(int32(i+1), e))
	}
	comp, err := mpComplete(viaNginx, clusterBucket, key, aws.ToString(up.UploadId), done...)
	if err != nil {
		t.Fatalf("complete through nginx: %v", err)
	}
	if got, want := aws.ToString(comp.ETag), `"`+mpETag(parts)+`"`; got != want {
		t.Fatalf("multipart ETag %s, want %s", got, want)
	}
	for _, s := range []*Server{c.a.server(), c.b.server(), c.ng.server()} {
		if got := getBody(t, s.SDK(t), clusterBucket, key); !bytes.Equal(got, data) {
			t.Fatalf("GET of the completed upload from %s: %d bytes, want %d", s.URL, len(got), len(data))
		}
	}
	for _, n := range nodes {
		lu, err := n.client(t).ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(clusterBucket)})
		if err != nil {
			t.Fatal(err)
		}
		if len(lu.Uploads) != 0 {
			t.Fatalf("%s still lists %d uploads after completion", n.name, len(lu.Uploads))
		}
	}
}

// clListEntry is what a listing says about one key.
type clListEntry struct {
	Key, ETag string
	Size      int64
	Modified  time.Time
}

// clList lists everything under prefix with delimiter "/", page by page of
// three keys, sending each page request to the next of nodes in turn: a
// continuation token minted by one node must work on the other.
func clList(t *testing.T, nodes []*clNode, prefix string) (objects []clListEntry, prefixes []string) {
	t.Helper()
	in := &s3.ListObjectsV2Input{Bucket: aws.String(clusterBucket), Prefix: aws.String(prefix), Delimiter: aws.String("/"), MaxKeys: aws.Int32(3)}
	for page := 0; ; page++ {
		out, err := nodes[page%len(nodes)].client(t).ListObjectsV2(context.Background(), in)
		if err != nil {
			t.Fatalf("list page %d on %s: %v", page, nodes[page%len(nodes)].name, err)
		}
		for _, o := range out.Contents {
			objects = append(objects, clListEntry{aws.ToString(o.Key), aws.ToString(o.ETag), aws.ToInt64(o.Size), aws.ToTime(o.LastModified)})
		}
		for _, p := range out.CommonPrefixes {
			prefixes = append(prefixes, aws.ToString(p.Prefix))
		}
		if !aws.ToBool(out.IsTruncated) {
			return objects, prefixes
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

func clListing(t *testing.T, c *clCluster) {
	ctx := context.Background()
	keys := []string{"list/a.txt", "list/b c.txt", "list/dir1/x", "list/dir1/y", "list/dir2/z", "list/é.txt", "list/z+plus", "list/dir3/deep/k"}
	for i, k := range keys {
		n := []*clNode{c.a, c.b}[i%2]
		if _, err := n.client(t).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(clusterBucket), Key: aws.String(k), Body: bytes.NewReader(randBytes(100 + i))}); err != nil {
			t.Fatalf("PUT %s on %s: %v", k, n.name, err)
		}
	}
	objsA, prefA := clList(t, []*clNode{c.a}, "list/")
	objsB, prefB := clList(t, []*clNode{c.b}, "list/")
	objsX, prefX := clList(t, []*clNode{c.a, c.b}, "list/")
	wantObjs := []string{"list/a.txt", "list/b c.txt", "list/z+plus", "list/é.txt"}
	wantPref := []string{"list/dir1/", "list/dir2/", "list/dir3/"}
	var gotObjs []string
	for _, o := range objsA {
		gotObjs = append(gotObjs, o.Key)
	}
	if !slices.Equal(gotObjs, wantObjs) || !slices.Equal(prefA, wantPref) {
		t.Fatalf("listing on A: objects %q prefixes %q, want %q %q", gotObjs, prefA, wantObjs, wantPref)
	}
	if !slices.Equal(objsA, objsB) || !slices.Equal(prefA, prefB) {
		t.Fatalf("listings differ:\nA %v %q\nB %v %q", objsA, prefA, objsB, prefB)
	}
	if !slices.Equal(objsA, objsX) || !slices.Equal(prefA, prefX) {
		t.Fatalf("listing with pages alternating between the nodes differs:\n%v %q\nwant %v %q", objsX, prefX, objsA, prefA)
	}
}

// clAdmin calls node n's admin API with the root key and decodes the answer.
func clAdmin(t *testing.T, n *clNode, method, path string, body any, out any) {
	t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	resp := n.server().Signed(t, method, "/_nfyio/admin/"+path, raw, http.Header{"Content-Type": {"application/json"}}, "")
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("admin %s %s on %s: %d %s", method, path, n.name, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("admin %s %s: %v: %s", method, path, err, b)
		}
	}
}

// clWaitFor polls cond until it holds or limit passes, and returns how long
// it took. Propagation between nodes is asynchronous, so the test observes
// it rather than assuming it.
func clWaitFor(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, state := cond()
		if ok {
			took := time.Since(start)
			t.Logf("%s after %v", what, took.Round(time.Millisecond))
			return took
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v; last: %s", what, limit, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func clKeyRevocation(t *testing.T, c *clCluster) {
	ctx := context.Background()
	var key struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
	}
	clAdmin(t, c.a, "POST", "keys", map[string]any{"name": "cluster reader", "scopes": []string{"read:objects"}}, &key)
	if key.AccessKeyID == "" || key.SecretAccessKey == "" {
		t.Fatalf("created key %+v", key)
	}
	get := func(n *clNode) error {
		out, err := n.server().SDKWith(t, key.AccessKeyID, key.SecretAccessKey, func(o *s3.Options) { o.Retryer = aws.NopRetryer{} }).
			GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(clusterBucket), Key: aws.String("small.txt")})
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, out.Body)
		out.Body.Close()
		return err
	}
	signer := clSigner(c.b.url)
	signer.Credentials = presign.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey}
	url := psPresign(t, signer, clusterBucket, "small.txt", presign.Options{Expires: time.Hour})
	presigned := func() int {
		resp, _ := psSend(t, psClient, "GET", url.URL, nil, nil)
		return resp.StatusCode
	}
	// A key created on A works on B at once (B has never seen it), and B
	// now holds it in its cache: what follows proves the cache is dropped.
	if err := get(c.b); err != nil {
		t.Fatalf("new key on B: %v", err)
	}
	if st := presigned(); st != http.StatusOK {
		t.Fatalf("presigned URL of the new key on B: %d", st)
	}

	clAdmin(t, c.a, "POST", "keys/"+key.AccessKeyID+"/disable", nil, nil)
	clWaitFor(t, "key disabled on A refused by B", 5*time.Second, func() (bool, string) {
		err := get(c.b)
		return apiCode(err) == "InvalidAccessKeyId", fmt.Sprint(err)
	})
	if st := presigned(); st != http.StatusForbidden {
		t.Fatalf("presigned URL of the disabled key on B: %d, want 403", st)
	}
	if err := get(c.a); apiCode(err) != "InvalidAccessKeyId" {
		t.Fatalf("disabled key on A: %v", err)
	}

	// And back, the other way round.
	clAdmin(t, c.b, "POST", "keys/"+key.AccessKeyID+"/enable", nil, nil)
	clWaitFor(t, "key enabled on B accepted by A", 5*time.Second, func() (bool, string) {
		err := get(c.a)
		return err == nil, fmt.Sprint(err)
	})
	if st := presigned(); st != http.StatusOK {
		t.Fatalf("presigned URL of the re-enabled key on B: %d", st)
	}
}

func clOnce(t *testing.T, c *clCluster) {
	const used = "Request has already been used"
	// Requests reach the nodes directly and through nginx, all with the
	// Host the URL was signed for (nginx's), as a load balancer sends them.
	type target struct {
		name string
		url  func(string) string
	}
	targets := []target{
		{"A", func(u string) string { return strings.Replace(u, c.ng.addr, c.a.addr, 1) }},
		{"B", func(u string) string { return strings.Replace(u, c.ng.addr, c.b.addr, 1) }},
		{"nginx", func(u string) string { return u }},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	for round := range 3 {
		u := psPresign(t, clSigner(c.ng.server().URL), clusterBucket, "small.txt", presign.Options{Once: true})
		const n = 30
		type result struct {
			target string
			status int
			body   string
		}
		results := make([]result, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			tg := targets[i%len(targets)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, err := http.NewRequest("GET", tg.url(u.URL), nil)
				if err != nil {
					results[i] = result{tg.name, -1, err.Error()}
					return
				}
				req.Host = c.ng.addr
				<-start
				resp, err := client.Do(req)
				if err != nil {
					results[i] = result{tg.name, -1, err.Error()}
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				results[i] = result{tg.name, resp.StatusCode, string(b)}
			}()
		}
		close(start)
		wg.Wait()
		var winners []string
		for i, r := range results {
			switch {
			case r.status == http.StatusOK:
				winners = append(winners, r.target)
			case r.status == http.StatusForbidden && strings.Contains(r.body, "<Message>"+used+"</Message>"):
			default:
				t.Errorf("round %d request %d via %s: %d %s", round, i, r.target, r.status, r.body)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d of %d concurrent uses across A, B and nginx succeeded (%v), want exactly 1", round, len(winners), n, winners)
		}
		t.Logf("round %d: the one use that succeeded went via %s", round, winners[0])
	}
}

// clInFlight reads node n's in-flight request gauge.
var clInFlightRE = regexp.MustCompile(`(?m)^nfyio_requests_in_flight (\d+)`)

func clInFlight(n *clNode) string {
	resp, err := http.Get(n.url + "/_nfyio/metrics")
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := clInFlightRE.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return fmt.Sprintf("status %d, no gauge", resp.StatusCode)
}

func clKillNode(t *testing.T, c *clCluster, survivor []byte) {
	ctx := context.Background()
	const half = "half-written.bin"
	// A slow streaming PUT to B: the body is declared at 16 MiB and sent in
	// pieces, and B is killed once it holds several whole chunks.
	u := psPresign(t, clSigner(c.b.url), clusterBucket, half, presign.Options{Method: "PUT"})
	pr, pw := io.Pipe()
	req, err := http.NewRequest("PUT", u.URL, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 16 << 20
	putDone := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			err = fmt.Errorf("the upload was answered: %d %s", resp.StatusCode, b)
		}
		putDone <- err
	}()
	// The metrics request counts itself: two in flight means the upload's
	// handler is running and reading the body.
	clWaitFor(t, "upload running on B", 10*time.Second, func() (bool, string) {
		v := clInFlight(c.b)
		return v == "2", "in flight: " + v
	})
	piece := randBytes(1 << 20)
	for range 5 {
		if _, err := pw.Write(piece); err != nil {
			t.Fatalf("writing the body: %v", err)
		}
	}
	// The writes return once the client's transport took them; give B a
	// moment to pass them on to SeaweedFS (a fast B only makes the kill
	// land later in the upload, which is as good).
	time.Sleep(300 * time.Millisecond)
	c.b.kill()
	pw.CloseWithError(fmt.Errorf("node killed"))
	if err := <-putDone; err == nil || strings.Contains(err.Error(), "answered") {
		t.Fatalf("the upload to the killed node: %v, want a broken connection", err)
	}

	ca := c.a.client(t)
	_, err = ca.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(clusterBucket), Key: aws.String(half)})
	if apiCode(err) != "NotFound" {
		t.Fatalf("HEAD of the killed upload's key on A: %v, want NotFound", err)
	}
	lo, err := ca.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(clusterBucket), Prefix: aws.String("half")})
	if err != nil || len(lo.Contents) != 0 {
		t.Fatalf("listing the killed upload's key on A: %v %d objects", err, len(lo.Contents))
	}

	// The survivor serves reads and writes.
	if got := getBody(t, ca, clusterBucket, "survivor.bin"); !bytes.Equal(got, survivor) {
		t.Fatalf("GET on A after B died: %d bytes, want %d", len(got), len(survivor))
	}
	after := randBytes(1<<20 + 3)
	if _, err := ca.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(clusterBucket), Key: aws.String("after-kill.bin"), Body: bytes.NewReader(after)}); err != nil {
		t.Fatalf("PUT on A after B died: %v", err)
	}
	// Through nginx every GET succeeds: the ones sent to B meet a refused
	// connection and nginx retries them on A (a GET is idempotent).
	gu := psPresign(t, clSigner(c.ng.server().URL), clusterBucket, "survivor.bin", presign.Options{})
	for i := range 6 {
		clGet(t, fmt.Sprintf("GET %d through nginx with B dead", i), psClient, gu.URL, nil, survivor)
	}
	if !strings.Contains(c.ng.errorLog(), c.b.addr) {
		t.Fatalf("nginx never tried the dead node %s; error log:\n%s", c.b.addr, c.ng.errorLog())
	}
	if retried := clUpstreams(c.ng, "GET /"+clusterBucket+"/survivor.bin 200 upstream="+c.b.addr+", "+c.a.addr); retried[c.a.addr] == 0 {
		t.Logf("no GET was retried from B to A (nginx had marked B failed already); access log:\n%s", c.ng.accessLog())
	}

	// What B stored of the upload is an orphan in SeaweedFS, listed in B's
	// journal: fsck of B's data dir finds it (and no damaged record), and
	// removes it.
	code, out := prRunFsck(t, c.bin, "--data", c.b.dataDir, "--meta", c.dsn, "--blobs", c.blobs)
	if code != 1 || !strings.Contains(out, "orphan blob") || strings.Contains(out, "missing-blob") || strings.Contains(out, "size-mismatch") {
		t.Fatalf("fsck of B after the kill: exit %d, want 1 with orphans only:\n%s", code, out)
	}
	code, out = prRunFsck(t, c.bin, "--data", c.b.dataDir, "--meta", c.dsn, "--blobs", c.blobs, "--repair", "--grace", "0")
	if code != 0 || !strings.Contains(out, ": deleted") {
		t.Fatalf("fsck --repair of B: exit %d:\n%s", code, out)
	}
	t.Logf("fsck --repair of B's journal:\n%s", out)

	// B comes back on its data dir and serves what A wrote meanwhile.
	b2, err := clStartNode(t, c.bin, "B restarted", c.b.dataDir, c.env, "--meta", c.dsn, "--blobs", c.blobs)
	if err != nil {
		t.Fatal(err)
	}
	if got := getBody(t, b2.client(t), clusterBucket, "after-kill.bin"); !bytes.Equal(got, after) {
		t.Fatalf("GET on the restarted B: %d bytes, want %d", len(got), len(after))
	}
	_, err = b2.client(t).HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(clusterBucket), Key: aws.String(half)})
	if apiCode(err) != "NotFound" {
		t.Fatalf("HEAD of the killed upload's key on the restarted B: %v, want NotFound", err)
	}
}

// TestMixedBackends runs the two half-shared deployments once each: the
// embedded metadata with SeaweedFS blobs, and PostgreSQL metadata with blobs
// on local disk. Each does put, get, list and multipart, survives a restart,
// and keeps its data where the configuration says.
func TestMixedBackends(t *testing.T) {
	if Backend() != "embedded" {
		t.Skipf("backend %s: this test brings its own backends; the embedded pass runs it", Backend())
	}
	NoEnv(t)
	t.Run("bolt+seaweedfs", func(t *testing.T) {
		blobs := "seaweedfs://" + strings.TrimPrefix(testweed.Start(t), "http://") + "?collection=mixed"
		mixedRun(t, func(c *server.Config) { c.Meta, c.Blobs = "", blobs }, func(t *testing.T, dataDir string) {
			if _, err := os.Stat(filepath.Join(dataDir, "meta.db")); err != nil {
				t.Errorf("embedded metadata: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dataDir, "blobs")); !os.IsNotExist(err) {
				t.Errorf("a local blobs directory exists (%v); blobs belong in SeaweedFS", err)
			}
		})
	})
	t.Run("postgres+files", func(t *testing.T) {
		dsn := testpg.Start(t)
		mixedRun(t, func(c *server.Config) { c.Meta, c.Blobs = dsn, "" }, func(t *testing.T, dataDir string) {
			if _, err := os.Stat(filepath.Join(dataDir, "meta.db")); !os.IsNotExist(err) {
				t.Errorf("an embedded metadata file exists (%v); metadata belongs in PostgreSQL", err)
			}
			if clBlobFiles(t, dataDir) == 0 {
				t.Error("no blob files in the data dir")
			}
		})
	})
}

// clBlobFiles counts the committed blob files of a data dir.
func clBlobFiles(t *testing.T, dataDir string) int {
	t.Helper()
	root := filepath.Join(dataDir, "blobs")
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p == filepath.Join(root, "tmp") {
			return fs.SkipDir
		}
		if d.Type().IsRegular() && d.Name() != "LOCK" {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk blobs: %v", err)
	}
	return n
}

// mixedRun starts a store with backends, runs the workload, restarts it on
// the same data dir and checks everything is still there, then lets where
// check the data dir.
func mixedRun(t *testing.T, backends Option, where func(*testing.T, string)) {
	ctx := context.Background()
	dataDir := t.TempDir()
	opts := []Option{backends, func(c *server.Config) { c.DataDir = dataDir }}
	srv := Start(t, opts...)
	c := srv.SDK(t)
	const bucket = "mixed"
	mustCreate(t, c, bucket)
	want := map[string][]byte{
		"small.txt":     []byte("small enough to live in the metadata record"),
		"dir/large.bin": randBytes(2<<20 + 1),
		"dir/gone.bin":  randBytes(300 << 10),
	}
	for k, b := range want {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(b)}); err != nil {
			t.Fatalf("PUT %s: %v", k, err)
		}
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/gone.bin")}); err != nil {
		t.Fatal(err)
	}
	delete(want, "dir/gone.bin")

	data := randBytes(5<<20 + 4321)
	parts := mpSplit(data, 5<<20)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("dir/multi.bin")})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("dir/multi.bin"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		done = append(done, mpPart(int32(i+1), aws.ToString(out.ETag)))
	}
	comp, err := mpComplete(c, bucket, "dir/multi.bin", aws.ToString(up.UploadId), done...)
	if err != nil {
		t.Fatal(err)
	}
	if got, w := aws.ToString(comp.ETag), `"`+mpETag(parts)+`"`; got != w {
		t.Fatalf("multipart ETag %s, want %s", got, w)
	}
	want["dir/multi.bin"] = data

	check := func(c *s3.Client) {
		t.Helper()
		for k, b := range want {
			if got := getBody(t, c, bucket, k); !bytes.Equal(got, b) {
				t.Fatalf("GET %s: %d bytes, want %d", k, len(got), len(b))
			}
		}
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Delimiter: aws.String("/")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "small.txt" ||
			len(out.CommonPrefixes) != 1 || aws.ToString(out.CommonPrefixes[0].Prefix) != "dir/" {
			t.Fatalf("listing with delimiter: %d objects, %d prefixes", len(out.Contents), len(out.CommonPrefixes))
		}
		out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("dir/")})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		if !slices.Equal(keys, []string{"dir/large.bin", "dir/multi.bin"}) {
			t.Fatalf("listing dir/: %q", keys)
		}
		rng, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/multi.bin"), Range: aws.String("bytes=5242000-5243000")})
		if err != nil {
			t.Fatal(err)
		}
		rb, err := io.ReadAll(rng.Body)
		rng.Body.Close()
		if err != nil || !bytes.Equal(rb, data[5242000:5243001]) {
			t.Fatalf("range across the part boundary: %d bytes, err %v", len(rb), err)
		}
	}
	check(c)

	if err := srv.Srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	srv2 := Start(t, opts...)
	check(srv2.SDK(t))
	where(t, dataDir)
}
