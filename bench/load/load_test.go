package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"nfyio.dev/storage/internal/s3test"
)

// Every load runs without an error against a real store: the store checks
// each request's signature, so this proves our signer, the presigned URLs
// and the listing walk, and that what the loads PUT is what GET returns.
func TestLoadsAgainstStore(t *testing.T) {
	s3test.NoEnv(t)
	srv := s3test.Start(t)
	ctx := context.Background()
	tg := newTarget("nfyio", srv.URL, os.Getpid(), s3test.RootAccessKey, s3test.RootSecretKey, defaultCongestion)
	for _, b := range []string{smallBucket, listBucket, smallBucket} {
		if err := tg.createBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	if n, err := tg.populate(ctx, smallBucket, smallPrefix, 20, smallSize, 4, deadline); err != nil || n != 20 {
		t.Fatalf("populate: %d, %v", n, err)
	}
	if n, err := tg.populate(ctx, listBucket, listPrefix, 1100, 0, 8, deadline); err != nil || n != 1100 {
		t.Fatalf("populate list: %d, %v", n, err)
	}
	out, err := srv.SDK(t).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(smallBucket), Key: aws.String(keyName(smallPrefix, 7))})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, payload[:smallSize]) {
		t.Fatalf("stored object differs from what the load sent (%d bytes)", len(got))
	}

	for _, spec := range []loadSpec{
		{Name: "put", Op: "put", Size: smallSize, Conc: 4, Bucket: smallBucket, Prefix: smallPrefix, Keys: 20},
		{Name: "get", Op: "get", Size: smallSize, Conc: 4, Bucket: smallBucket, Prefix: smallPrefix, Keys: 20},
		{Name: "mixed", Op: "mixed", Size: smallSize, Conc: 4, Bucket: smallBucket, Prefix: smallPrefix, Keys: 20, ReadPct: 70},
		{Name: "presign", Op: "presign", Size: smallSize, Conc: 4, Bucket: smallBucket, Prefix: smallPrefix, Keys: 20},
		{Name: "list", Op: "list", Conc: 2, Bucket: listBucket, Prefix: listPrefix, Keys: 1100},
	} {
		r := runRounds(ctx, []*target{tg}, spec, 2, 50*time.Millisecond, 300*time.Millisecond)[0]
		if r.Errors != 0 || r.Ops == 0 {
			t.Errorf("%s: %d ops, %d errors, first %s", spec.Name, r.Ops, r.Errors, r.FirstError)
			continue
		}
		if r.P50ms <= 0 || r.P99ms < r.P50ms || r.OpsPerSec <= 0 || r.ClientCPUus <= 0 || r.RSSMaxMiB <= 0 {
			t.Errorf("%s: implausible figures %+v", spec.Name, r)
		}
	}

	// A wrong secret is refused, and the load counts the refusals.
	bad := newTarget("bad", srv.URL, 0, s3test.RootAccessKey, "not-the-secret", defaultCongestion)
	spec := loadSpec{Name: "get", Op: "get", Size: smallSize, Conc: 1, Bucket: smallBucket, Prefix: smallPrefix, Keys: 20}
	r := runRounds(ctx, []*target{bad}, spec, 1, 0, 200*time.Millisecond)[0]
	if r.Errors == 0 || r.Ops != 0 || !strings.Contains(r.FirstError, "SignatureDoesNotMatch") {
		t.Errorf("wrong secret: %d ops, %d errors, first %q", r.Ops, r.Errors, r.FirstError)
	}
}

func TestParseGoBench(t *testing.T) {
	const out = `goos: linux
pkg: nfyio.dev/storage/internal/sigv4
BenchmarkVerifyHeaderV4-2                 	  154472	      3661 ns/op	     704 B/op	      10 allocs/op
BenchmarkChunkedDecodeSigned-2            	     100	   5502916 ns/op	1524.39 MB/s	  133837 B/op	    1048 allocs/op
some log line from a benchmark
pkg: nfyio.dev/storage/internal/storage/boltmeta
BenchmarkPutObject/sync/parallel64-2     	   25138	     23189 ns/op	         0.01691 commits/op
PASS
`
	bs, err := parseGoBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 3 {
		t.Fatalf("%d benchmarks: %+v", len(bs), bs)
	}
	if b := bs[1]; b.Pkg != "nfyio.dev/storage/internal/sigv4" || b.Name != "ChunkedDecodeSigned" || b.Metrics["MB/s"] != 1524.39 || b.Metrics["allocs/op"] != 1048 {
		t.Errorf("%+v", b)
	}
	if b := bs[2]; b.Pkg != "nfyio.dev/storage/internal/storage/boltmeta" || b.Name != "PutObject/sync/parallel64" || b.Metrics["commits/op"] != 0.01691 {
		t.Errorf("%+v", b)
	}
}

// The targets table applies the thresholds to the figures.
func TestTargets(t *testing.T) {
	res := func(target, name string, conc int, ops, mib, p50 float64) result {
		return result{Target: target, Load: loadSpec{Name: name, Conc: conc, Size: 4 << 10}, OpsPerSec: ops, MiBPerSec: mib, P50ms: p50}
	}
	rep := &e2eReport{Results: []result{
		res("nfyio", "GET 4KiB", 32, 2100, 0, 1), res("versitygw", "GET 4KiB", 32, 1000, 0, 1),
		res("nfyio", "PUT 4KiB", 32, 1900, 0, 1), res("versitygw", "PUT 4KiB", 32, 1000, 0, 1),
		res("nfyio", "GET 16MiB", 8, 0, 900, 1), res("memserver", "GET 16MiB", 8, 0, 1000, 1),
		res("nfyio", "PUT 16MiB", 8, 0, 700, 1), res("memserver", "PUT 16MiB", 8, 0, 2000, 1),
		res("nfyio", "LIST 1000 of 100k", 1, 100, 0, 25),
	}, Startup: &startupResult{Objects: 100_000, Millis: 120}}
	got := map[string]string{}
	for _, tr := range targets(rep, &diskReport{SeqWriteMiBps: 800}) {
		got[tr[0]] = tr[2]
	}
	for goal, want := range map[string]string{
		"GET 4KiB, 32 clients: ≥ 2× versitygw":                                         "**met**",
		"PUT 4KiB, 32 clients: ≥ 2× versitygw":                                         "**not met**",
		"GET 4KiB, 8 clients: ≥ 2× versitygw":                                          "not measured",
		"GET 16MiB, 8 clients: ≥ 80% of memserver":                                     "**met**",
		"PUT 16MiB, 8 clients: ≥ 80% of min(loopback PUT, disk write)":                 "**met**", // 700 of the disk's 800
		"start-up to first answer with 100000 objects < 300 ms":                        "**met**",
		"1,000-key ListObjectsV2 page of a 100,000-key bucket: p50 < 20 ms (1 client)": "**not met**",
	} {
		if got[goal] != want {
			t.Errorf("%s: %q, want %q (all: %v)", goal, got[goal], want, got)
		}
	}
}

// The 16 MiB PUT targets are judged on the load generator's own client and
// also give the figure of a client on the host's default congestion
// control, against that client's own loopback limit when it is the lower.
func TestTargetsHostCongestion(t *testing.T) {
	res := func(target string, mib float64) result {
		return result{Target: target, Load: loadSpec{Name: "PUT 16MiB", Conc: 8, Size: 16 << 20}, MiBPerSec: mib}
	}
	rep := &e2eReport{HostCongestion: "bbr", ClientCongestion: "reno", Results: []result{
		res("nfyio", 900), res("memserver", 4000), res("nfyio-hostcc", 500), res("memserver-hostcc", 600),
	}}
	for _, tr := range targets(rep, &diskReport{SeqWriteMiBps: 1000}) {
		if tr[0] != "PUT 16MiB, 8 clients: ≥ 80% of min(loopback PUT, disk write)" {
			continue
		}
		if tr[2] != "**met**" {
			t.Errorf("judged %q, want met: nfyio did 90%% of the disk", tr[2])
		}
		for _, want := range []string{"900 MiB/s = 90% of disk's 1000 MiB/s", "client on the host's bbr, nfyio-hostcc: 500 MiB/s = 83% of memserver-hostcc"} {
			if !strings.Contains(tr[1], want) {
				t.Errorf("measured %q lacks %q", tr[1], want)
			}
		}
		return
	}
	t.Fatal("no 8-client 16 MiB PUT target")
}

// TestPayloadFileOutlivesGC: the descriptor payloadPath names must stay
// the payload file after garbage collections (a finalizer once closed it,
// and large PUTs then sent whatever file took its number).
func TestPayloadFileOutlivesGC(t *testing.T) {
	path := payloadPath()
	if path == "" {
		t.Skip("no payload file on this system")
	}
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("%s holds %d bytes, not the %d-byte payload", path, len(got), len(payload))
	}
}

func TestFmtRatio(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{0.7986, "0.799×"}, {0.8, "0.80×"}, {0.8031, "0.80×"}, {1.996, "1.996×"},
		{2.004, "2.00×"}, {0.34, "0.34×"}, {2.72, "2.72×"},
	} {
		if got := fmtRatio(c.v, true); got != c.want {
			t.Errorf("fmtRatio(%v) = %q, want %q", c.v, got, c.want)
		}
	}
	if got := fmtRatio(0, false); got != "–" {
		t.Errorf("unknown ratio: %q", got)
	}
}
