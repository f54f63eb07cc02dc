// Command memserver is the loopback limit of `make bench`: the simplest Go
// HTTP server that speaks enough S3 for the loads. PUT stores the body in a
// map, GET returns it, GET on a bucket lists it (ListObjectsV2 with
// start-after / continuation-token and max-keys). No authentication, no
// durability. Whatever it reaches is what net/http over loopback allows on
// this machine; a real store can only come close to it.
package main

import (
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// object is one stored body. Readers hold mu.RLock while they send it, so
// that a replaced object's buffer can be recycled once they are done.
type object struct {
	mu  sync.RWMutex
	buf []byte
}

type bucket struct {
	mu      sync.RWMutex
	objects map[string]*object
	sorted  []string // keys in order; rebuilt when dirty
	dirty   bool
}

type store struct {
	mu      sync.RWMutex
	buckets map[string]*bucket
}

// bufs recycles large bodies: allocating (and zeroing) 16 MiB per PUT
// would make the limit a measure of the allocator.
var bufs sync.Pool

const poolMin = 1 << 20

func getBuf(n int) []byte {
	if n >= poolMin {
		if b, ok := bufs.Get().(*[]byte); ok && cap(*b) >= n {
			return (*b)[:n]
		}
	}
	return make([]byte, n)
}

func putBuf(b []byte) {
	if cap(b) >= poolMin {
		bufs.Put(&b)
	}
}

func (s *store) bucket(name string, create bool) *bucket {
	s.mu.RLock()
	b := s.buckets[name]
	s.mu.RUnlock()
	if b != nil || !create {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b = s.buckets[name]; b == nil {
		b = &bucket{objects: map[string]*object{}}
		s.buckets[name] = b
	}
	return b
}

func (s *store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case name == "":
		w.WriteHeader(http.StatusOK)
	case key == "" && r.Method == http.MethodPut:
		s.bucket(name, true)
		w.WriteHeader(http.StatusOK)
	case key == "" && r.Method == http.MethodGet:
		b := s.bucket(name, false)
		if b == nil {
			http.Error(w, "NoSuchBucket", http.StatusNotFound)
			return
		}
		b.list(w, r)
	case r.Method == http.MethodPut:
		b := s.bucket(name, false)
		if b == nil {
			http.Error(w, "NoSuchBucket", http.StatusNotFound)
			return
		}
		if r.ContentLength < 0 {
			http.Error(w, "MissingContentLength", http.StatusLengthRequired)
			return
		}
		buf := getBuf(int(r.ContentLength))
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			putBuf(buf)
			http.Error(w, "IncompleteBody", http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		old := b.objects[key]
		if old == nil {
			b.dirty = true
		}
		b.objects[key] = &object{buf: buf}
		b.mu.Unlock()
		if old != nil {
			// No new reader can find old; wait for the ones sending it.
			old.mu.Lock()
			putBuf(old.buf)
		}
		w.Header().Set("ETag", `"0"`)
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodGet:
		b := s.bucket(name, false)
		if b == nil {
			http.Error(w, "NoSuchBucket", http.StatusNotFound)
			return
		}
		b.mu.RLock()
		o := b.objects[key]
		if o != nil {
			o.mu.RLock()
		}
		b.mu.RUnlock()
		if o == nil {
			http.Error(w, "NoSuchKey", http.StatusNotFound)
			return
		}
		defer o.mu.RUnlock()
		w.Header().Set("Content-Length", strconv.Itoa(len(o.buf)))
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(o.buf)
	default:
		http.Error(w, "NotImplemented", http.StatusNotImplemented)
	}
}

type listResult struct {
	XMLName               xml.Name   `xml:"ListBucketResult"`
	Name                  string     `xml:"Name"`
	KeyCount              int        `xml:"KeyCount"`
	MaxKeys               int        `xml:"MaxKeys"`
	IsTruncated           bool       `xml:"IsTruncated"`
	NextContinuationToken string     `xml:"NextContinuationToken,omitempty"`
	Contents              []listItem `xml:"Contents"`
}

type listItem struct {
	Key  string `xml:"Key"`
	Size int    `xml:"Size"`
}

// list answers ListObjectsV2 pages in key order.
func (b *bucket) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	maxKeys := 1000
	if v := q.Get("max-keys"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < maxKeys {
			maxKeys = n
		}
	}
	after := q.Get("start-after")
	if t := q.Get("continuation-token"); t != "" {
		after = t
	}
	prefix := q.Get("prefix")
	b.mu.Lock()
	if b.dirty {
		b.sorted = b.sorted[:0]
		for k := range b.objects {
			b.sorted = append(b.sorted, k)
		}
		slices.Sort(b.sorted)
		b.dirty = false
	}
	i := sort.SearchStrings(b.sorted, after)
	if i < len(b.sorted) && b.sorted[i] == after {
		i++
	}
	if prefix > after {
		i = max(i, sort.SearchStrings(b.sorted, prefix))
	}
	res := listResult{MaxKeys: maxKeys}
	for ; i < len(b.sorted) && len(res.Contents) < maxKeys; i++ {
		k := b.sorted[i]
		if !strings.HasPrefix(k, prefix) {
			break
		}
		res.Contents = append(res.Contents, listItem{Key: k, Size: len(b.objects[k].buf)})
	}
	res.IsTruncated = i < len(b.sorted) && strings.HasPrefix(b.sorted[i], prefix)
	b.mu.Unlock()
	res.KeyCount = len(res.Contents)
	if res.IsTruncated {
		res.NextContinuationToken = res.Contents[len(res.Contents)-1].Key
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, xml.Header)
	if err := xml.NewEncoder(w).Encode(res); err != nil {
		log.Printf("list: %v", err)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9100", "listen address")
	sendBuffer := flag.Int("send-buffer", 0, "SO_SNDBUF of accepted connections in bytes; 0 leaves the kernel's autotuning (the bench also runs it with nfyio's buffer for local clients)")
	flag.Parse()
	s := &store{buckets: map[string]*bucket{}}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("memserver listening on %s\n", *addr)
	log.Fatal(http.Serve(sendBufferListener{ln, *sendBuffer}, s))
}

// sendBufferListener sets the send buffer of every accepted connection
// when size is positive.
type sendBufferListener struct {
	net.Listener
	size int
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && l.size > 0 {
		if err := tc.SetWriteBuffer(l.size); err != nil {
			log.Printf("send buffer: %v", err)
		}
	}
	return c, err
}
