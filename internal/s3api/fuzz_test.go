package s3api

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"nfyio.dev/storage/internal/checksum"
	"nfyio.dev/storage/internal/s3err"
)

// The fuzz targets cover the parsers that read client input before any
// authorization: they must never panic, must fail only with an S3 error,
// and what they accept must satisfy the invariants the handlers rely on.
// Seed corpora live in testdata/fuzz/<target>.

func s3Code(t *testing.T, err error) string {
	t.Helper()
	var e *s3err.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an S3 error", err, err)
	}
	return e.Code
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []struct {
		v    string
		size int64
	}{
		{"bytes=0-0", 1}, {"bytes=0-", 10}, {"bytes=-5", 10}, {"bytes=-0", 10}, {"bytes=9-3", 10},
		{"bytes=10-", 10}, {"bytes=0-99999999999999999999", 10}, {"bytes= 1 - 2 ", 10}, {"bytes=1-2,4-5", 10},
		{"items=0-1", 10}, {"bytes=-", 0}, {"bytes=0-0", 0}, {"bytes=-9223372036854775808", 5},
	} {
		f.Add(s.v, s.size)
	}
	f.Fuzz(func(t *testing.T, v string, size int64) {
		if size < 0 {
			return // object sizes are never negative
		}
		start, length, ok, err := parseRange(v, size)
		if err != nil {
			if code := s3Code(t, err); code != "InvalidRange" {
				t.Fatalf("%q on %d: code %s", v, size, code)
			}
			if ok {
				t.Fatalf("%q: ok with an error", v)
			}
			return
		}
		if !ok {
			return // whole object
		}
		if start < 0 || length < 1 || start > size-length {
			t.Fatalf("%q on %d bytes: start %d length %d outside the object", v, size, start, length)
		}
	})
}

// xmlTargets are the request documents the handlers decode.
var xmlTargets = []func() any{
	func() any { return &deleteRequest{} },
	func() any { return &completeRequest{} },
	func() any { return &createBucketConfiguration{} },
}

func FuzzDecodeXML(f *testing.F) {
	f.Add([]byte(`<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b</Key><VersionId>null</VersionId></Object></Delete>`))
	f.Add([]byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"abc"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>`))
	f.Add([]byte(`<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><Delete><Object><Key>&b;</Key></Object></Delete>`))
	f.Add([]byte(strings.Repeat("<a>", 20) + strings.Repeat("</a>", 20)))
	f.Add([]byte(`<Delete><Object><Key>&#0;</Key></Object></Delete>`))
	f.Add([]byte(`<Delete><Object><Key><![CDATA[x]]></Key></Object>`))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, doc []byte) {
		for _, mk := range xmlTargets {
			v := mk()
			err := decodeXML(doc, v)
			if err != nil {
				if code := s3Code(t, err); code != "MalformedXML" {
					t.Fatalf("code %s for %q", code, doc)
				}
				continue
			}
			// Accepted documents declare no entities and stay shallow.
			if bytes.Contains(doc, []byte("<!")) && bytes.Contains(bytes.ToUpper(doc), []byte("<!DOCTYPE")) {
				t.Fatalf("a DOCTYPE was accepted: %q", doc)
			}
			if depth := maxDepth(doc); depth > maxXMLDepth {
				t.Fatalf("depth %d accepted: %q", depth, doc)
			}
		}
	})
}

// maxDepth is a crude nesting count of well-formed documents.
func maxDepth(doc []byte) int {
	depth, most := 0, 0
	for i := 0; i < len(doc); i++ {
		if doc[i] != '<' || i+1 >= len(doc) {
			continue
		}
		switch doc[i+1] {
		case '/':
			depth--
		case '?', '!':
		default:
			end := bytes.IndexByte(doc[i:], '>')
			if end > 0 && doc[i+end-1] == '/' {
				continue // <empty/>
			}
			depth++
			most = max(most, depth)
		}
	}
	return most
}

func FuzzValidKey(f *testing.F) {
	for _, k := range []string{"a", "dir/file.txt", "../../etc/passwd", "a\x00b", "\xff\xfe", strings.Repeat("k", 1024), strings.Repeat("k", 1025), "ü/ß/€", "//", " "} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := validKey(key)
		bad := len(key) > maxKeyLength || !utf8.ValidString(key) || strings.ContainsRune(key, 0)
		if err == nil && bad {
			t.Fatalf("accepted %q", key)
		}
		if err != nil {
			if !bad {
				t.Fatalf("refused %q: %v", key, err)
			}
			if code := s3Code(t, err); code != "KeyTooLongError" && code != "InvalidArgument" {
				t.Fatalf("code %s", code)
			}
		}
	})
}

// escapePath escapes each segment of a key as clients do in
// x-amz-copy-source.
func escapePath(s string) string {
	parts := strings.Split(s, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func FuzzCopySource(f *testing.F) {
	for _, v := range []string{"bucket/key", "/bucket/key", "bucket/dir/k%20ey", "bucket/key?versionId=null", "bucket/key?versionId=3",
		"bucket/", "/key", "bucket", "bucket/%zz", "bucket/a%3Fb?versionId=null", "%2Fbucket/key", "?", ""} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		bucket, key, err := copySource(v)
		if err != nil {
			if code := s3Code(t, err); code != "InvalidArgument" && code != "NoSuchVersion" {
				t.Fatalf("%q: code %s", v, code)
			}
			return
		}
		if bucket == "" || key == "" || strings.Contains(bucket, "/") {
			t.Fatalf("%q parsed as bucket %q key %q", v, bucket, key)
		}
		// What was parsed, encoded as a client would, parses the same.
		b2, k2, err := copySource("/" + escapePath(bucket) + "/" + escapePath(key))
		if err != nil || b2 != bucket || k2 != key {
			t.Fatalf("%q -> %q %q; re-encoded -> %q %q, %v", v, bucket, key, b2, k2, err)
		}
	})
}

func FuzzParseChecksumRequest(f *testing.F) {
	f.Add("1B2M2Y8AsgTpgAmY7PhCfg==", "CRC32", "AAAAAA==", "", "")
	f.Add("", "SHA256", "47DEQpj8HBSa+/TWmw3iPa4NBUgiqs4g3J4tASTQAFI=", "", "")
	f.Add("", "", "", "x-amz-checksum-crc64nvme", "")
	f.Add("", "", "", "x-amz-checksum-md5", "")
	f.Add("not base64", "", "", "", "crc32c")
	f.Add("", "CRC32C", "AAAAAA==", "x-amz-checksum-sha1", "SHA1")
	f.Add("", "CRC32", "AAAA", "", "")
	f.Fuzz(func(t *testing.T, md5, alg, value, trailer, sdk string) {
		h := http.Header{}
		if md5 != "" {
			h.Set("Content-Md5", md5)
		}
		if alg != "" {
			h.Set(checksumHeader(strings.ToUpper(alg)), value)
		}
		if trailer != "" {
			h.Set("X-Amz-Trailer", trailer)
		}
		if sdk != "" {
			h.Set("X-Amz-Sdk-Checksum-Algorithm", sdk)
		}
		c, err := parseChecksumRequest(h)
		if err != nil {
			if code := s3Code(t, err); code != "InvalidDigest" && code != "InvalidRequest" {
				t.Fatalf("code %s", code)
			}
			return
		}
		if c.contentMD5 != nil && len(c.contentMD5) != 16 {
			t.Fatalf("Content-MD5 of %d bytes accepted", len(c.contentMD5))
		}
		if c.alg != "" && checksum.New(c.alg) == nil {
			t.Fatalf("unknown algorithm %q accepted", c.alg)
		}
		if c.value != "" {
			b, err := base64.StdEncoding.DecodeString(c.value)
			if err != nil || len(b) != checksum.Size(c.alg) {
				t.Fatalf("%s value %q accepted", c.alg, c.value)
			}
		}
	})
}
