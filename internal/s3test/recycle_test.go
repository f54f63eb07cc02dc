package s3test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestGetDuringOverwrites: a GET whose client stops reading near the end of
// a large object, while the object is replaced and other objects of the
// same size are written (which reuse the files of replaced blobs), still
// receives the original bytes. The server has sent the tail with sendfile
// by then, so the kernel holds the file's cached pages, not a copy: the
// file must not be written over.
func TestGetDuringOverwrites(t *testing.T) {
	srv := Start(t)
	const size = 3 << 20
	if resp := srv.Signed(t, http.MethodPut, "/overwrites", nil, nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("create bucket: %s", resp.Status)
	}
	original := randBytes(size)
	if resp := srv.Signed(t, http.MethodPut, "/overwrites/k", original, nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("put: %s", resp.Status)
	}
	for round := range 3 {
		get := srv.Signed(t, http.MethodGet, "/overwrites/k", nil, nil, "")
		if get.StatusCode != http.StatusOK {
			t.Fatalf("get: %s", get.Status)
		}
		// Read all but the last 256 KiB, then let the server finish
		// sending: the rest fits in the socket buffers.
		head := make([]byte, size-256<<10)
		if _, err := io.ReadFull(get.Body, head); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)

		// Replace k (its blob is deleted), then write other objects of
		// the same size, which take the files of deleted blobs.
		next := randBytes(size)
		if resp := srv.Signed(t, http.MethodPut, "/overwrites/k", next, nil, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("overwrite: %s", resp.Status)
		}
		for i := range 3 {
			other := randBytes(size)
			key := "/overwrites/other" + string(rune('a'+i))
			if resp := srv.Signed(t, http.MethodPut, key, other, nil, ""); resp.StatusCode != http.StatusOK {
				t.Fatalf("put %s: %s", key, resp.Status)
			}
			if resp := srv.Signed(t, http.MethodPut, key, randBytes(size), nil, ""); resp.StatusCode != http.StatusOK {
				t.Fatalf("overwrite %s: %s", key, resp.Status)
			}
		}
		tail, err := io.ReadAll(get.Body)
		if err != nil {
			t.Fatal(err)
		}
		if got := append(head, tail...); !bytes.Equal(got, original) {
			first := 0
			for first < min(len(got), size) && got[first] == original[first] {
				first++
			}
			t.Fatalf("round %d: the GET received other bytes from offset %d (of %d received)", round, first, len(got))
		}
		// The latest content is what a new GET sees.
		resp := srv.Signed(t, http.MethodGet, "/overwrites/k", nil, nil, "")
		if b, _ := io.ReadAll(resp.Body); !bytes.Equal(b, next) {
			t.Fatalf("round %d: k does not read back its last content", round)
		}
		original = next
	}
}
