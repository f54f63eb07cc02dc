package sigv4

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"nfyio.dev/storage/internal/s3err"
)

const (
	encDate  = "20130524T000000Z"
	encScope = "20130524/us-east-1/s3/aws4_request"
	encSeed  = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
)

var encKey = SigningKey(testSecret, "20130524", testRegion, "s3")

// chunkEncoder writes aws-chunked bodies from the specification, with a
// running signature chain, so that tests can build any body, good or bad.
type chunkEncoder struct {
	signed bool
	prev   string
	buf    bytes.Buffer
}

func newEncoder(signed bool) *chunkEncoder { return &chunkEncoder{signed: signed, prev: encSeed} }

func (e *chunkEncoder) sign(data []byte) string {
	sum := sha256.Sum256(data)
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + encDate + "\n" + encScope + "\n" + e.prev + "\n" + emptySHA256 + "\n" + hex.EncodeToString(sum[:])
	e.prev = signHex(encKey, sts)
	return e.prev
}

// chunk appends one data chunk (size 0 is the final chunk, without the
// CRLF that ends a body without trailers).
func (e *chunkEncoder) chunk(data []byte) *chunkEncoder {
	fmt.Fprintf(&e.buf, "%x", len(data))
	if e.signed {
		e.buf.WriteString(";chunk-signature=" + e.sign(data))
	}
	e.buf.WriteString("\r\n")
	if len(data) > 0 {
		e.buf.Write(data)
		e.buf.WriteString("\r\n")
	}
	return e
}

func (e *chunkEncoder) chunks(data []byte, size int) *chunkEncoder {
	for len(data) > 0 {
		n := min(size, len(data))
		e.chunk(data[:n])
		data = data[n:]
	}
	return e
}

func (e *chunkEncoder) raw(s string) *chunkEncoder { e.buf.WriteString(s); return e }

// trailer appends trailing headers and, when signed, their signature. eol
// is the line ending of the header lines: "\r\n" as the AWS SDKs write it,
// or "\n" followed by a blank "\r\n" as minio-go does.
func (e *chunkEncoder) trailer(eol string, kv ...string) *chunkEncoder {
	var canon strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		e.buf.WriteString(kv[i] + ":" + kv[i+1] + eol)
		canon.WriteString(kv[i] + ":" + kv[i+1] + "\n")
	}
	if eol == "\n" {
		e.buf.WriteString("\r\n")
	}
	if e.signed {
		sum := sha256.Sum256([]byte(canon.String()))
		sts := "AWS4-HMAC-SHA256-TRAILER\n" + encDate + "\n" + encScope + "\n" + e.prev + "\n" + hex.EncodeToString(sum[:])
		e.buf.WriteString("x-amz-trailer-signature:" + signHex(encKey, sts) + "\r\n")
	}
	e.buf.WriteString("\r\n")
	return e
}

func (e *chunkEncoder) bytes() []byte { return e.buf.Bytes() }

func chunkedAuth(mode PayloadMode) *Auth {
	a := &Auth{Kind: HeaderV4}
	a.setPayload(mode, "", newDerivedKey(encKey), encSeed, encDate, encScope)
	return a
}

// decodeAll reads the decoded body to the end, checking the contract that
// an error is always reported instead of io.EOF, never after it.
func decodeAll(t *testing.T, mode PayloadMode, hdr map[string]string, body []byte) ([]byte, http.Header, error) {
	t.Helper()
	r := httptest.NewRequest("PUT", "/b/k", bytes.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	p, err := chunkedAuth(mode).Body(r)
	if err != nil {
		return nil, nil, err
	}
	var out bytes.Buffer
	buf := make([]byte, 1000) // small reads cross chunk boundaries
	for {
		if p.Trailer() != nil {
			t.Fatal("Trailer before io.EOF")
		}
		n, err := p.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			if p.Trailer() == nil && mode.Chunked() {
				t.Fatal("no Trailer after io.EOF")
			}
			// Reading again keeps saying io.EOF.
			if n, err := p.Read(buf); n != 0 || err != io.EOF {
				t.Fatalf("read after EOF: %d %v", n, err)
			}
			return out.Bytes(), p.Trailer(), nil
		}
		if err != nil {
			if n, err2 := p.Read(buf); n != 0 || err2 != err {
				t.Fatalf("error not sticky: %d %v", n, err2)
			}
			return out.Bytes(), nil, err
		}
	}
}

func TestChunkedDecoding(t *testing.T) {
	data := randomData(t, 3*8192+100)
	small := data[:100]
	dlen := func(n int) map[string]string { return map[string]string{"X-Amz-Decoded-Content-Length": fmt.Sprint(n)} }
	cut := func(b []byte, n int) []byte { return bytes.Clone(b[:len(b)-n]) }
	good := newEncoder(true).chunks(data, 8192).chunk(nil).raw("\r\n").bytes()

	// A body whose second chunk carries a wrong signature.
	midBad := func() []byte {
		e := newEncoder(true).chunk(data[:8192])
		fmt.Fprintf(&e.buf, "2000;chunk-signature=%s\r\n", strings.Repeat("0", 64))
		e.buf.Write(data[8192:16384])
		e.buf.WriteString("\r\n")
		e.prev = strings.Repeat("0", 64)
		return e.chunk(data[16384:]).chunk(nil).raw("\r\n").bytes()
	}()
	// Chunks in the wrong order, each validly signed at its original place.
	swapped := func() []byte {
		e1 := newEncoder(true)
		e1.chunk(data[:8192])
		first := bytes.Clone(e1.bytes())
		e1.buf.Reset()
		e1.chunk(data[8192:16384])
		second := bytes.Clone(e1.bytes())
		e1.buf.Reset()
		e1.buf.Write(second)
		e1.buf.Write(first)
		return e1.chunk(nil).raw("\r\n").bytes()
	}()

	cases := []struct {
		name  string
		mode  PayloadMode
		hdr   map[string]string
		body  []byte
		want  []byte // decoded content on success
		code  string // s3err code on failure
		trail map[string]string
	}{
		{name: "signed chunks", mode: PayloadStreamingSigned, hdr: dlen(len(data)), body: good, want: data},
		{name: "signed without declared length", mode: PayloadStreamingSigned, body: good, want: data},
		{name: "signed one big chunk", mode: PayloadStreamingSigned, body: newEncoder(true).chunk(data).chunk(nil).raw("\r\n").bytes(), want: data},
		{name: "signed empty body", mode: PayloadStreamingSigned, hdr: dlen(0), body: newEncoder(true).chunk(nil).raw("\r\n").bytes(), want: []byte{}},
		{name: "bad signature on a middle chunk", mode: PayloadStreamingSigned, body: midBad, code: "SignatureDoesNotMatch"},
		{name: "chunks swapped", mode: PayloadStreamingSigned, body: swapped, code: "SignatureDoesNotMatch"},
		{name: "changed byte in last chunk", mode: PayloadStreamingSigned, body: bytes.Replace(good, data[len(data)-10:], bytes.Repeat([]byte{'x'}, 10), 1), code: "SignatureDoesNotMatch"},
		{name: "bad final chunk signature", mode: PayloadStreamingSigned, body: newEncoder(true).chunks(data, 8192).raw("0;chunk-signature=" + strings.Repeat("1", 64) + "\r\n\r\n").bytes(), code: "SignatureDoesNotMatch"},
		{name: "chunk without signature", mode: PayloadStreamingSigned, body: newEncoder(false).chunk(small).chunk(nil).raw("\r\n").bytes(), code: "SignatureDoesNotMatch"},
		{name: "final chunk missing", mode: PayloadStreamingSigned, body: newEncoder(true).chunks(data, 8192).bytes(), code: "IncompleteBody"},
		{name: "cut inside chunk data", mode: PayloadStreamingSigned, body: good[:9000], code: "IncompleteBody"},
		{name: "cut inside chunk header", mode: PayloadStreamingSigned, body: good[:8192+90+20], code: "IncompleteBody"},
		{name: "final CRLF missing", mode: PayloadStreamingSigned, body: cut(good, 2), code: "IncompleteBody"},
		{name: "declared length longer", mode: PayloadStreamingSigned, hdr: dlen(len(data) + 1), body: good, code: "IncompleteBody"},
		{name: "declared length shorter", mode: PayloadStreamingSigned, hdr: dlen(len(data) - 1), body: good, code: "IncompleteBody"},
		{name: "small chunk not last", mode: PayloadStreamingSigned, body: newEncoder(true).chunk(small).chunk(small).chunk(nil).raw("\r\n").bytes(), code: "InvalidChunkSizeError"},
		{name: "oversized chunk-size line", mode: PayloadStreamingSigned, body: []byte(strings.Repeat("1", 20000) + "\r\n"), code: "InvalidRequest"},
		{name: "long line within buffer", mode: PayloadStreamingSigned, body: []byte("10;" + strings.Repeat("x", maxChunkLine) + "\r\n"), code: "InvalidRequest"},
		{name: "non-hex size", mode: PayloadStreamingSigned, body: []byte("zz;chunk-signature=" + encSeed + "\r\n"), code: "InvalidRequest"},
		{name: "signed size", mode: PayloadStreamingUnsignedTrailer, body: []byte("+10\r\n"), code: "InvalidRequest"},
		{name: "negative size", mode: PayloadStreamingUnsignedTrailer, body: []byte("-1\r\n"), code: "InvalidRequest"},
		{name: "size overflow", mode: PayloadStreamingUnsignedTrailer, body: []byte("ffffffffffffffff\r\n"), code: "InvalidRequest"},
		{name: "data not followed by CRLF", mode: PayloadStreamingUnsignedTrailer, body: []byte("3\r\nabcXY0\r\n\r\n"), code: "InvalidRequest"},
		{name: "garbage after final chunk", mode: PayloadStreamingSigned, body: append(cut(good, 2), "junk\r\n"...), code: "InvalidRequest"},
		{name: "empty body", mode: PayloadStreamingSigned, body: nil, code: "IncompleteBody"},
		{name: "bad decoded length header", mode: PayloadStreamingSigned, hdr: map[string]string{"X-Amz-Decoded-Content-Length": "12a"}, body: good, code: "InvalidArgument"},

		{
			name: "unsigned trailer, SDK line endings", mode: PayloadStreamingUnsignedTrailer,
			hdr:  map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc32", "X-Amz-Decoded-Content-Length": fmt.Sprint(len(data))},
			body: newEncoder(false).chunks(data, 5000).chunk(nil).trailer("\r\n", "x-amz-checksum-crc32", crc32Trailer(data)).bytes(),
			want: data, trail: map[string]string{"x-amz-checksum-crc32": crc32Trailer(data)},
		},
		{
			name: "unsigned trailer, minio line endings", mode: PayloadStreamingUnsignedTrailer,
			hdr:  map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc32"},
			body: newEncoder(false).chunks(data, 65536).chunk(nil).trailer("\n", "x-amz-checksum-crc32", crc32Trailer(data)).bytes(),
			want: data, trail: map[string]string{"x-amz-checksum-crc32": crc32Trailer(data)},
		},
		{
			name: "unsigned trailer, two trailers, small chunks", mode: PayloadStreamingUnsignedTrailer,
			hdr:  map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc32, x-amz-checksum-sha256"},
			body: newEncoder(false).chunks(small, 7).chunk(nil).trailer("\r\n", "x-amz-checksum-crc32", "AAAAAA==", "X-Amz-Checksum-Sha256", "s").bytes(),
			want: small, trail: map[string]string{"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha256": "s"},
		},
		{
			name: "unsigned trailer without trailers", mode: PayloadStreamingUnsignedTrailer,
			body: newEncoder(false).chunk(small).chunk(nil).raw("\r\n").bytes(), want: small, trail: map[string]string{},
		},
		{
			name: "declared trailer missing", mode: PayloadStreamingUnsignedTrailer,
			hdr:  map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc32c"},
			body: newEncoder(false).chunk(small).chunk(nil).trailer("\r\n", "x-amz-checksum-crc32", "AAAAAA==").bytes(), code: "MalformedTrailerError",
		},
		{
			name: "trailer line without colon", mode: PayloadStreamingUnsignedTrailer,
			body: newEncoder(false).chunk(small).chunk(nil).raw("x-amz-checksum-crc32 AAAAAA==\r\n\r\n").bytes(), code: "MalformedTrailerError",
		},
		{
			name: "too many trailers", mode: PayloadStreamingUnsignedTrailer,
			body: newEncoder(false).chunk(small).chunk(nil).raw(strings.Repeat("x-amz-meta-a:b\r\n", maxTrailerLines+1)).bytes(), code: "MalformedTrailerError",
		},
		{
			name: "oversized trailer line", mode: PayloadStreamingUnsignedTrailer,
			body: newEncoder(false).chunk(small).chunk(nil).raw("x-amz-meta-a:" + strings.Repeat("b", 20000) + "\r\n").bytes(), code: "MalformedTrailerError",
		},

		{
			name: "signed trailer, SDK line endings", mode: PayloadStreamingSignedTrailer,
			hdr:  map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc32"},
			body: newEncoder(true).chunks(data, 8192).chunk(nil).trailer("\r\n", "x-amz-checksum-crc32", crc32Trailer(data)).bytes(),
			want: data, trail: map[string]string{"x-amz-checksum-crc32": crc32Trailer(data)},
		},
		{
			name: "signed trailer, minio line endings", mode: PayloadStreamingSignedTrailer,
			body: newEncoder(true).chunks(data, 65536).chunk(nil).trailer("\n", "x-amz-checksum-crc32", crc32Trailer(data)).bytes(),
			want: data, trail: map[string]string{"x-amz-checksum-crc32": crc32Trailer(data)},
		},
		{
			name: "signed trailer value changed", mode: PayloadStreamingSignedTrailer,
			body: bytes.Replace(newEncoder(true).chunk(small).chunk(nil).trailer("\r\n", "x-amz-checksum-crc32", "AAAAAA==").bytes(), []byte("AAAAAA=="), []byte("AAAAAB=="), 1),
			code: "SignatureDoesNotMatch",
		},
		{
			name: "signed trailer signature missing", mode: PayloadStreamingSignedTrailer,
			body: newEncoder(true).chunk(small).chunk(nil).raw("x-amz-checksum-crc32:AAAAAA==\r\n\r\n").bytes(),
			code: "SignatureDoesNotMatch",
		},
		{
			name: "signed trailer, header after signature", mode: PayloadStreamingSignedTrailer,
			body: append(cut(newEncoder(true).chunk(small).chunk(nil).trailer("\r\n", "x-amz-checksum-crc32", "AAAAAA==").bytes(), 2), "x-amz-meta-x:y\r\n\r\n"...),
			code: "MalformedTrailerError",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, trailer, err := decodeAll(t, tc.mode, tc.hdr, tc.body)
			if tc.code != "" {
				if err == nil {
					t.Fatalf("want %s, decoded %d bytes", tc.code, len(got))
				}
				se := asS3(t, err, tc.code)
				if tc.code == "InvalidChunkSizeError" {
					if c, _ := field(se, "Chunk"); c != "1" {
						t.Fatalf("fields %v", se.Fields)
					}
					if c, _ := field(se, "BadChunkSize"); c != "100" {
						t.Fatalf("fields %v", se.Fields)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("decoded %d bytes, want %d", len(got), len(tc.want))
			}
			if tc.trail != nil {
				if len(trailer) != len(tc.trail) {
					t.Fatalf("trailer %v, want %v", trailer, tc.trail)
				}
				for k, v := range tc.trail {
					if trailer.Get(k) != v {
						t.Fatalf("trailer %v, want %v", trailer, tc.trail)
					}
				}
			}
		})
	}
}

// TestChunkedDataBeforeBadSignature documents the streaming contract: the
// bytes of a chunk are handed out before its signature can be checked, and
// the failure arrives in place of io.EOF.
func TestChunkedDataBeforeBadSignature(t *testing.T) {
	data := randomData(t, 20000)
	body := newEncoder(true).chunk(data[:10000]).chunk(data[10000:]).chunk(nil).raw("\r\n").bytes()
	body[len(body)-200] ^= 1 // inside the second chunk's data
	got, _, err := decodeAll(t, PayloadStreamingSigned, nil, body)
	asS3(t, err, "SignatureDoesNotMatch")
	if len(got) != len(data) {
		t.Fatalf("read %d bytes before the error, want all %d", len(got), len(data))
	}
}

func TestPlainAndHashPayloads(t *testing.T) {
	body := []byte("some payload")
	r := httptest.NewRequest("PUT", "/b/k", bytes.NewReader(body))
	a := &Auth{Kind: HeaderV4, Payload: PayloadSHA256, contentSHA256: sha256Hex(body)}
	p, err := a.Body(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(p)
	if err != nil || !bytes.Equal(got, body) || p.Length() != int64(len(body)) || p.Trailer() != nil {
		t.Fatalf("got %q %v len %d", got, err, p.Length())
	}

	a.contentSHA256 = sha256Hex([]byte("other"))
	p, _ = a.Body(httptest.NewRequest("PUT", "/b/k", bytes.NewReader(body)))
	_, err = io.ReadAll(p)
	asS3(t, err, "XAmzContentSHA256Mismatch")

	p, _ = (&Auth{Payload: PayloadUnsigned}).Body(httptest.NewRequest("GET", "/b/k", nil))
	if got, err := io.ReadAll(p); err != nil || len(got) != 0 {
		t.Fatalf("empty body: %q %v", got, err)
	}
}

// TestTruncatedBodiesOverTCP writes requests whose bodies stop short of
// their Content-Length on a raw connection, as a client that dies mid-upload
// would, and checks the server sees IncompleteBody.
func TestTruncatedBodiesOverTCP(t *testing.T) {
	ts := newTestServer(t, false, Options{})
	now := time.Now().UTC()
	host := strings.TrimPrefix(ts.URL, "http://")

	send := func(t *testing.T, req *http.Request, body []byte, sendBytes int) *apiError {
		t.Helper()
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req.Body = nil
		req.ContentLength = int64(len(body))
		var head bytes.Buffer
		fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.Method, req.URL.RequestURI(), req.URL.Host, len(body))
		for k, vs := range req.Header {
			for _, v := range vs {
				fmt.Fprintf(&head, "%s: %s\r\n", k, v)
			}
		}
		head.WriteString("\r\n")
		head.Write(body[:sendBytes])
		if _, err := conn.Write(head.Bytes()); err != nil {
			t.Fatal(err)
		}
		conn.(*net.TCPConn).CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 {
			t.Fatalf("truncated body accepted: %s", raw)
		}
		var e struct{ Code string }
		_ = xml.Unmarshal(raw, &e)
		return &apiError{Status: resp.StatusCode, Code: e.Code}
	}

	t.Run("signed sha256", func(t *testing.T) {
		body := randomData(t, 5000)
		req, _ := http.NewRequest("PUT", ts.URL+"/bucket/k", bytes.NewReader(body))
		signHeaderSDK(t, req, sha256Hex(body), now, sdkCreds)
		if e := send(t, req, body, 4000); e.Status != 400 || e.Code != "IncompleteBody" {
			t.Fatalf("got %+v", e)
		}
	})
	t.Run("aws-chunked", func(t *testing.T) {
		data := randomData(t, 20000)
		body := newEncoder(false).chunks(data, 8192).chunk(nil).trailer("\r\n", "x-amz-checksum-crc32", crc32Trailer(data)).bytes()
		req, _ := http.NewRequest("PUT", ts.URL+"/bucket/k", nil)
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(data)))
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		signHeaderSDK(t, req, streamingUnsignedTrailer, now, sdkCreds)
		req.Header.Del("Content-Length")
		if e := send(t, req, body, 12000); e.Status != 400 || e.Code != "IncompleteBody" {
			t.Fatalf("got %+v", e)
		}
	})
}

func TestBodyErrorsAreS3Errors(t *testing.T) {
	// Read errors other than a short body pass through for the caller.
	boom := errors.New("connection reset")
	r := httptest.NewRequest("PUT", "/b/k", nil)
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader("5\r\nab"), errReader{boom}))
	p, _ := chunkedAuth(PayloadStreamingUnsignedTrailer).Body(r)
	_, err := io.ReadAll(p)
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	var se *s3err.Error
	if errors.As(err, &se) {
		t.Fatalf("foreign read error turned into %v", se)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
