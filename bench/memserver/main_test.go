package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func do(t *testing.T, method, url string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestMemserver(t *testing.T) {
	srv := httptest.NewServer(&store{buckets: map[string]*bucket{}})
	defer srv.Close()
	if code, _ := do(t, "PUT", srv.URL+"/nob/k", []byte("x")); code != http.StatusNotFound {
		t.Fatalf("PUT into a missing bucket: %d", code)
	}
	if code, _ := do(t, "PUT", srv.URL+"/b", nil); code != http.StatusOK {
		t.Fatalf("create bucket: %d", code)
	}
	for i := range 5 {
		if code, _ := do(t, "PUT", fmt.Sprintf("%s/b/k/%d", srv.URL, i), []byte(fmt.Sprint("body", i))); code != http.StatusOK {
			t.Fatalf("PUT %d: %d", i, code)
		}
	}
	if code, b := do(t, "GET", srv.URL+"/b/k/3", nil); code != http.StatusOK || string(b) != "body3" {
		t.Fatalf("GET: %d %q", code, b)
	}
	if code, _ := do(t, "GET", srv.URL+"/b/k/9", nil); code != http.StatusNotFound {
		t.Fatalf("GET missing: %d", code)
	}
	// Large bodies are recycled on overwrite: the new one must be served.
	big1, big2 := bytes.Repeat([]byte{1}, 2<<20), bytes.Repeat([]byte{2}, 2<<20)
	for _, b := range [][]byte{big1, big2} {
		if code, _ := do(t, "PUT", srv.URL+"/b/big", b); code != http.StatusOK {
			t.Fatalf("PUT big: %d", code)
		}
	}
	if code, b := do(t, "GET", srv.URL+"/b/big", nil); code != http.StatusOK || !bytes.Equal(b, big2) {
		t.Fatalf("GET big: %d, %d bytes, equal %v", code, len(b), bytes.Equal(b, big2))
	}

	var page listResult
	code, b := do(t, "GET", srv.URL+"/b?list-type=2&max-keys=2&start-after=k/1", nil)
	if err := xml.Unmarshal(b, &page); code != http.StatusOK || err != nil {
		t.Fatalf("list: %d %v %s", code, err, b)
	}
	if len(page.Contents) != 2 || page.Contents[0].Key != "k/2" || page.Contents[1].Key != "k/3" || !page.IsTruncated || page.NextContinuationToken != "k/3" {
		t.Fatalf("page: %+v", page)
	}
	code, b = do(t, "GET", srv.URL+"/b?list-type=2&continuation-token=k/3&prefix=k/", nil)
	page = listResult{}
	if err := xml.Unmarshal(b, &page); code != http.StatusOK || err != nil {
		t.Fatalf("list: %d %v %s", code, err, b)
	}
	if len(page.Contents) != 1 || page.Contents[0].Key != "k/4" || page.IsTruncated {
		t.Fatalf("last page: %+v", page)
	}
}
