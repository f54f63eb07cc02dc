package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"nfyio.dev/storage/internal/s3err"
)

// The example credentials of the AWS documentation, so that documented
// signatures can be checked as they are.
const (
	testAK     = "AKIAIOSFODNN7EXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testRegion = "us-east-1"
)

// testLookup knows testAK; "DISABLEDKEY" answers with an s3err value that
// must reach the client unchanged; anything else is unknown.
func testLookup(_ context.Context, ak string) (string, error) {
	switch ak {
	case testAK:
		return testSecret, nil
	case "DISABLEDKEY":
		return "", s3err.AccessDenied.WithMessage("The access key is disabled.")
	}
	return "", errors.New("no such key")
}

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// result is what the test server reports about an authenticated request.
type result struct {
	Kind          string
	AccessKeyID   string
	Region        string
	Payload       string
	SignedHeaders []string
	ExpiresIn     time.Duration
	Length        int64
	BodyLen       int64
	BodySHA256    string
	Trailer       map[string]string
}

// apiError is an S3 XML error as a client receives it.
type apiError struct {
	Status  int
	Code    string
	Message string
	Fields  map[string]string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// testServer runs a real HTTP server whose handler authenticates with a
// Verifier, reads the body through Auth.Body, and answers with either the
// S3 XML error or a JSON result. Results are also sent on Results so that
// tests driving an SDK (which ignores the response body) can see them.
type testServer struct {
	*httptest.Server
	V       *Verifier
	Clock   *clock
	Results chan result
}

func newTestServer(t *testing.T, tls bool, opts Options) *testServer {
	t.Helper()
	ts := &testServer{Results: make(chan result, 16)}
	if opts.Now == nil {
		ts.Clock = newClock(time.Now())
		opts.Now = ts.Clock.Now
	}
	ts.V = NewVerifier(testLookup, opts)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(err error) {
			s3err.As(err).Write(w, r, "TESTREQUEST", "")
		}
		a, err := ts.V.Verify(r)
		if err != nil {
			fail(err)
			return
		}
		p, err := a.Body(r)
		if err != nil {
			fail(err)
			return
		}
		h := sha256.New()
		n, err := io.Copy(h, p)
		if err != nil {
			fail(err)
			return
		}
		res := result{
			Kind: a.Kind.String(), AccessKeyID: a.AccessKeyID, Region: a.Region,
			Payload: a.Payload.String(), SignedHeaders: a.SignedHeaders, ExpiresIn: a.ExpiresIn,
			Length: p.Length(), BodyLen: n, BodySHA256: hex.EncodeToString(h.Sum(nil)),
		}
		if tr := p.Trailer(); tr != nil {
			res.Trailer = map[string]string{}
			for k := range tr {
				res.Trailer[strings.ToLower(k)] = tr.Get(k)
			}
		}
		select {
		case ts.Results <- res:
		default:
		}
		w.Header().Set("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
	if tls {
		ts.Server = httptest.NewTLSServer(h)
	} else {
		ts.Server = httptest.NewServer(h)
	}
	t.Cleanup(ts.Close)
	return ts
}

// do sends req and returns either the server's result or its S3 error.
func do(t *testing.T, c *http.Client, req *http.Request) (*result, *apiError) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if resp.StatusCode == http.StatusOK {
		var res result
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatalf("decode result %q: %v", body, err)
		}
		return &res, nil
	}
	e := &apiError{Status: resp.StatusCode, Fields: map[string]string{}}
	if req.Method == http.MethodHead {
		return nil, e
	}
	var doc struct {
		Code    string
		Message string
		Any     []struct {
			XMLName xml.Name
			Value   string `xml:",chardata"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("decode error %q: %v", body, err)
	}
	e.Code, e.Message = doc.Code, doc.Message
	for _, f := range doc.Any {
		e.Fields[f.XMLName.Local] = f.Value
	}
	return nil, e
}

// mustOK fails unless the request succeeded.
func mustOK(t *testing.T, c *http.Client, req *http.Request) *result {
	t.Helper()
	res, e := do(t, c, req)
	if e != nil {
		t.Fatalf("%s %s: want success, got %d %s: %s %v", req.Method, req.URL, e.Status, e.Code, e.Message, e.Fields)
	}
	return res
}

// mustFail fails unless the request failed with status and code.
func mustFail(t *testing.T, c *http.Client, req *http.Request, status int, code string) *apiError {
	t.Helper()
	res, e := do(t, c, req)
	if e == nil {
		t.Fatalf("%s %s: want %d %s, got success %+v", req.Method, req.URL, status, code, res)
	}
	if e.Status != status || e.Code != code {
		t.Fatalf("%s %s: want %d %s, got %d %s: %s %v", req.Method, req.URL, status, code, e.Status, e.Code, e.Message, e.Fields)
	}
	return e
}

// asS3 asserts err is an *s3err.Error with code and returns it.
func asS3(t *testing.T, err error, code string) *s3err.Error {
	t.Helper()
	var se *s3err.Error
	if !errors.As(err, &se) {
		t.Fatalf("want *s3err.Error %s, got %T %v", code, err, err)
	}
	if se.Code != code {
		t.Fatalf("want %s, got %s: %s (cause %v)", code, se.Code, se.Message, se.Cause)
	}
	return se
}

func field(e *s3err.Error, name string) (string, bool) {
	for _, f := range e.Fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// signHex is hex(HMAC-SHA256(key, data)), computed afresh for tests.
func signHex(key []byte, data string) string {
	return hex.EncodeToString(hmacSHA256(key, data))
}
