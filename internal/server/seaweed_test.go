package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"nfyio.dev/storage/internal/storage/seaweedblob"
	"nfyio.dev/storage/internal/testweed"
)

func TestParseSeaweedURL(t *testing.T) {
	good := []struct {
		in     string
		master string
		opts   seaweedblob.Options
	}{
		{"seaweedfs://weed-master:9333", "http://weed-master:9333", seaweedblob.Options{}},
		{"seaweedfs://10.0.0.5:9333/", "http://10.0.0.5:9333", seaweedblob.Options{}},
		{"seaweedfs://m:9333?replication=001&collection=media&chunkSize=4MiB", "http://m:9333",
			seaweedblob.Options{Replication: "001", Collection: "media", ChunkSize: 4 << 20}},
		{"seaweedfs://m:9333?chunkSize=1048576", "http://m:9333", seaweedblob.Options{ChunkSize: 1 << 20}},
	}
	for _, c := range good {
		got, err := parseSeaweedURL(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got.master != c.master || got.opts != c.opts {
			t.Errorf("%s: got %s %+v, want %s %+v", c.in, got.master, got.opts, c.master, c.opts)
		}
	}
	bad := map[string]string{
		"seaweedfs://":                                   "want seaweedfs://",
		"seaweedfs://m:9333/some/path":                   "want seaweedfs://",
		"seaweedfs://user:pw@m:9333":                     "want seaweedfs://",
		"seaweedfs://m:9333?replicaton=001":              `unknown parameter "replicaton"`,
		"seaweedfs://m:9333?chunkSize=0":                 "chunkSize",
		"seaweedfs://m:9333?chunkSize=big":               "chunkSize",
		"seaweedfs://m:9333?collection=a/b":              "collection",
		"seaweedfs://m:9333?collection=":                 "collection",
		"seaweedfs://m:9333?replication=1&replication=2": "given 2 times",
	}
	for in, want := range bad {
		if _, err := parseSeaweedURL(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one mentioning %q", in, err, want)
		}
	}
	// The placement code is checked where the store opens, before any
	// connection: a wrong one never reaches a master.
	if _, err := openSeaweed(context.Background(), "seaweedfs://127.0.0.1:1?replication=01", Config{DataDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "replication") {
		t.Errorf("replication=01: error %v, want one about replication", err)
	}
}

// TestSeaweedURLOptions writes a blob through a store opened from a URL with
// every option set, then asks the volume servers what they hold: the
// collection's volumes carry the placement code, every chunk is on both
// servers, and the blob was cut at chunkSize.
func TestSeaweedURLOptions(t *testing.T) {
	cluster := testweed.StartCluster(t, testweed.Options{Volumes: 2, MaxVolumes: 20})
	ctx := context.Background()
	const collection = "urlopts"
	rawURL := "seaweedfs://" + strings.TrimPrefix(cluster.MasterURL, "http://") +
		"?replication=001&collection=" + collection + "&chunkSize=1MiB"
	blobs, err := openBlobs(ctx, Config{Blobs: rawURL, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer blobs.Close()

	data := make([]byte, 3<<20+100) // four chunks of at most 1 MiB
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	w, err := blobs.Create(ctx, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	ref, err := w.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := blobs.Open(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	b.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (err %v), want the %d written", len(got), err, len(data))
	}

	for i := range 2 {
		var st struct {
			Volumes []struct {
				ID               uint32 `json:"Id"`
				Collection       string
				FileCount        int
				ReplicaPlacement struct {
					SameRack int `json:"node"`
					DiffRack int `json:"rack"`
					DiffDC   int `json:"dc"`
				}
			}
		}
		resp, err := http.Get(cluster.VolumeURL(i) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("volume server %d status: %v", i, err)
		}
		files := 0
		for _, v := range st.Volumes {
			if v.Collection != collection {
				// The cluster's own readiness check grew volumes in the
				// default collection; the store must not have written there.
				if v.FileCount != 0 {
					t.Errorf("volume server %d: %d files in volume %d of collection %q; the store should only write to %q", i, v.FileCount, v.ID, v.Collection, collection)
				}
				continue
			}
			if p := v.ReplicaPlacement; p.SameRack != 1 || p.DiffRack != 0 || p.DiffDC != 0 {
				t.Errorf("volume server %d: volume %d has placement %+v, want 001", i, v.ID, p)
			}
			files += v.FileCount
		}
		// Replication 001 keeps a copy of every chunk on each of the two
		// servers of the rack.
		if files != 4 {
			t.Errorf("volume server %d holds %d files of the collection, want the blob's 4 chunks", i, files)
		}
	}
}
