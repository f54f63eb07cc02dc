package s3api

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime/multipart"
	"strings"
	"testing"
	"time"

	"nfyio.dev/storage/internal/s3err"
)

var policyNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func policyDoc(conds string) string {
	return `{"expiration": "2025-03-01T12:05:00.000Z", "conditions": ` + conds + `}`
}

func errText(err error) (code, msg string) {
	if err == nil {
		return "", ""
	}
	e := s3err.As(err)
	return e.Code, e.Message
}

func TestParsePostPolicyErrors(t *testing.T) {
	cases := []struct {
		name, doc, msg string
	}{
		{"not json", `{"expiration": `, "Invalid Policy: Invalid JSON."},
		{"not an object", `[]`, "Invalid Policy: Invalid JSON."},
		{"trailing data", policyDoc(`[]`) + ` {}`, "Invalid Policy: Invalid JSON."},
		{"unknown member", `{"Version": "2012-10-17", "expiration": "2025-03-01T12:05:00Z", "conditions": []}`, "Invalid Policy: Unexpected: 'version'"},
		{"missing expiration", `{"conditions": []}`, "Invalid Policy: Policy missing expiration."},
		{"expiration offset", `{"expiration": "2025-03-01T12:05:00+02:00", "conditions": []}`, "Invalid Policy: Invalid 'expiration' value: '2025-03-01T12:05:00+02:00'"},
		{"expiration space", `{"expiration": "2025-03-01 12:05:00 UTC", "conditions": []}`, "Invalid Policy: Invalid 'expiration' value: '2025-03-01 12:05:00 UTC'"},
		{"expiration number", `{"expiration": 12, "conditions": []}`, "Invalid Policy: Invalid 'expiration' value: '12'"},
		{"missing conditions", `{"expiration": "2025-03-01T12:05:00Z"}`, "Invalid Policy: Policy missing conditions."},
		{"conditions not list", `{"expiration": "2025-03-01T12:05:00Z", "conditions": {}}`, "Invalid Policy: Invalid 'conditions' value: must be a List."},
		{"simple two properties", policyDoc(`[{"bucket": "b", "key": "k"}]`), "Invalid Policy: Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."},
		{"simple empty", policyDoc(`[{}]`), "Invalid Policy: Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."},
		{"simple number", policyDoc(`[{"content-length": 6199034}]`), "Invalid Policy: Invalid Simple-Condition: value must be a string."},
		{"simple null", policyDoc(`[{"success_action_redirect": null}]`), "Invalid Policy: Invalid JSON."},
		{"empty condition", policyDoc(`[[]]`), "Invalid Policy: Invalid Condition: missing operation identifier."},
		{"unknown operation", policyDoc(`[["ends-with", "$key", "x"]]`), "Invalid Policy: Invalid Condition: unknown operation 'ends-with'."},
		{"eq arguments", policyDoc(`[["eq", "$key"]]`), "Invalid Policy: Invalid eq: wrong number of arguments."},
		{"starts-with arguments", policyDoc(`[["starts-with", "$key", "a", "b"]]`), "Invalid Policy: Invalid starts-with: wrong number of arguments."},
		{"range arguments", policyDoc(`[["content-length-range", 0]]`), "Invalid Policy: Invalid content-length-range: wrong number of arguments."},
		{"range float", policyDoc(`[["content-length-range", 0, 512.0]]`), "Invalid Policy: Invalid JSON."},
		{"eq operand not string", policyDoc(`[["eq", "$key", 5]]`), "Invalid Policy: Invalid JSON."},
		{"condition string", policyDoc(`["eq"]`), "Invalid Policy: Invalid condition test: must be a List or Object."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePostPolicy(b64(tc.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			code, msg := errText(err)
			if code != "InvalidPolicyDocument" || msg != tc.msg {
				t.Fatalf("got %s %q, want InvalidPolicyDocument %q", code, msg, tc.msg)
			}
		})
	}
	if _, err := parsePostPolicy("not base64!"); err == nil {
		t.Fatal("bad base64 accepted")
	}
}

// TestPostPolicyConditions runs every kind of condition against forms that
// satisfy and violate it.
func TestPostPolicyConditions(t *testing.T) {
	type form = map[string]string
	base := form{"key": "user/42/cat.png", "policy": "p", "x-amz-signature": "s", "x-amz-algorithm": "AWS4-HMAC-SHA256"}
	with := func(extra form) form {
		f := form{}
		for k, v := range base {
			f[k] = v
		}
		for k, v := range extra {
			if v == "\x00delete" {
				delete(f, k)
				continue
			}
			f[k] = v
		}
		return f
	}
	// The algorithm field is sent by every form below, so every policy
	// covers it.
	alg := `["eq", "$x-amz-algorithm", "AWS4-HMAC-SHA256"]`
	cases := []struct {
		name  string
		conds string
		form  form
		key   string // key after ${filename}; the form's key when empty
		fail  string // expected message, "" for success
	}{
		{"bucket ok", `[{"bucket": "photos"}, ["starts-with", "$key", ""], ` + alg + `]`, base, "", ""},
		{"bucket wrong", `[{"bucket": "other"}, ["starts-with", "$key", ""], ` + alg + `]`, base, "",
			`Policy Condition failed: ["eq", "$bucket", "other"]`},
		{"bucket field covered", `[["eq", "$bucket", "photos"], ["starts-with", "$key", ""], ` + alg + `]`, with(form{"bucket": "photos"}), "", ""},
		{"key eq", `[{"key": "user/42/cat.png"}, ` + alg + `]`, base, "", ""},
		{"key eq wrong", `[{"key": "user/42/dog.png"}, ` + alg + `]`, base, "",
			`Policy Condition failed: ["eq", "$key", "user/42/dog.png"]`},
		{"key starts-with", `[["starts-with", "$key", "user/42/"], ` + alg + `]`, base, "", ""},
		{"key outside prefix", `[["starts-with", "$key", "user/43/"], ` + alg + `]`, base, "",
			`Policy Condition failed: ["starts-with", "$key", "user/43/"]`},
		{"key after filename", `[["starts-with", "$key", "user/42/"], ` + alg + `]`, with(form{"key": "user/42/${filename}"}), "user/42/cat.png", ""},
		{"key eq is checked after filename", `[{"key": "user/42/${filename}"}, ` + alg + `]`, with(form{"key": "user/42/${filename}"}), "user/42/cat.png",
			`Policy Condition failed: ["eq", "$key", "user/42/${filename}"]`},
		{"eq array form", `[["eq", "$key", "user/42/cat.png"], ` + alg + `]`, base, "", ""},
		{"operator case", `[["StArTs-WiTh", "$KeY", "user/"], ` + alg + `]`, base, "", ""},
		{"condition name case", `[["starts-with", "$key", ""], ["eq", "$Content-Type", "image/png"], ` + alg + `]`, with(form{"content-type": "image/png"}), "", ""},
		{"value case matters", `[["starts-with", "$key", ""], ["eq", "$content-type", "Image/PNG"], ` + alg + `]`, with(form{"content-type": "image/png"}), "",
			`Policy Condition failed: ["eq", "$content-type", "Image/PNG"]`},
		{"content-type starts-with", `[["starts-with", "$key", ""], ["starts-with", "$Content-Type", "image/"], ` + alg + `]`, with(form{"content-type": "image/png"}), "", ""},
		{"content-type list all match", `[["starts-with", "$key", ""], ["starts-with", "$Content-Type", "image/"], ` + alg + `]`, with(form{"content-type": "image/png, image/jpeg"}), "", ""},
		{"content-type list one fails", `[["starts-with", "$key", ""], ["starts-with", "$Content-Type", "image/"], ` + alg + `]`, with(form{"content-type": "image/png, text/html"}), "",
			`Policy Condition failed: ["starts-with", "$Content-Type", "image/"]`},
		{"starts-with empty allows anything", `[["starts-with", "$key", ""], ["starts-with", "$x-amz-meta-note", ""], ` + alg + `]`, with(form{"x-amz-meta-note": "whatever"}), "", ""},
		{"absent field fails even with empty prefix", `[["starts-with", "$key", ""], ["starts-with", "$Content-Type", ""], ` + alg + `]`, base, "",
			`Policy Condition failed: ["starts-with", "$Content-Type", ""]`},
		{"metadata eq", `[["starts-with", "$key", ""], {"x-amz-meta-uuid": "14365123651274"}, ` + alg + `]`, with(form{"x-amz-meta-uuid": "14365123651274"}), "", ""},
		{"metadata eq wrong", `[["starts-with", "$key", ""], ["eq", "$x-amz-meta-uuid", "14365123651274"], ` + alg + `]`, with(form{"x-amz-meta-uuid": "151274"}), "",
			`Policy Condition failed: ["eq", "$x-amz-meta-uuid", "14365123651274"]`},
		{"missing dollar never holds", `[["eq", "key", "user/42/cat.png"], ` + alg + `]`, base, "",
			`Policy Condition failed: ["eq", "key", "user/42/cat.png"]`},
		{"success_action_status", `[["starts-with", "$key", ""], {"success_action_status": "201"}, ` + alg + `]`, with(form{"success_action_status": "201"}), "", ""},
		{"success_action_status uncovered", `[["starts-with", "$key", ""], ` + alg + `]`, with(form{"success_action_status": "201"}), "",
			`Extra input fields: success_action_status`},
		{"redirect", `[["starts-with", "$key", ""], ["starts-with", "$success_action_redirect", "https://app.example.com/"], ` + alg + `]`,
			with(form{"success_action_redirect": "https://app.example.com/done"}), "", ""},
		{"redirect elsewhere", `[["starts-with", "$key", ""], ["starts-with", "$success_action_redirect", "https://app.example.com/"], ` + alg + `]`,
			with(form{"success_action_redirect": "https://evil.example.com/"}), "",
			`Policy Condition failed: ["starts-with", "$success_action_redirect", "https://app.example.com/"]`},
		{"quotes escaped in message", `[["starts-with", "$key", ""], {"Content-Disposition": "filename=\"a.png\""}, ` + alg + `]`, with(form{"content-disposition": "inline"}), "",
			`Policy Condition failed: ["eq", "$Content-Disposition", "filename=\"a.png\""]`},
		{"extra fields sorted", `[["starts-with", "$key", ""], ` + alg + `]`, with(form{"zeta": "1", "alpha": "2"}), "",
			`Extra input fields: alpha, zeta`},
		{"exempt fields", `[["starts-with", "$key", ""], ` + alg + `]`, with(form{"x-ignore-tracker": "1", "awsaccesskeyid": "AK", "signature": "s"}), "", ""},
		{"algorithm must be covered", `[["starts-with", "$key", ""]]`, base, "", `Extra input fields: x-amz-algorithm`},
		{"range", `[["starts-with", "$key", ""], ["content-length-range", 1, 1024], ` + alg + `]`, base, "", ""},
		{"range as strings", `[["starts-with", "$key", ""], ["content-length-range", "1", "1024"], ` + alg + `]`, base, "", ""},
		{"range not numbers", `[["starts-with", "$key", ""], ["content-length-range", "test", "10"], ` + alg + `]`, base, "",
			`Policy Condition failed: ["content-length-range", "test", "10"]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePostPolicy(b64(policyDoc(tc.conds)))
			if err != nil {
				t.Fatalf("policy: %v", err)
			}
			names := map[string]string{}
			for k := range tc.form {
				names[k] = k
			}
			key := tc.key
			if key == "" {
				key = tc.form["key"]
			}
			_, err = p.check(policyNow, &postForm{fields: tc.form, names: names}, "photos", key)
			code, msg := errText(err)
			if tc.fail == "" {
				if err != nil {
					t.Fatalf("refused: %s %s", code, msg)
				}
				return
			}
			if code != "AccessDenied" || msg != "Invalid according to Policy: "+tc.fail {
				t.Fatalf("got %s %q\nwant AccessDenied %q", code, msg, "Invalid according to Policy: "+tc.fail)
			}
		})
	}
}

func TestPostPolicyLimitsAndExpiry(t *testing.T) {
	f := &postForm{fields: map[string]string{"key": "k", "content-type": "image/png"}, names: map[string]string{"key": "key", "content-type": "Content-Type"}}
	p, err := parsePostPolicy(b64(`{"expiration": "2025-03-01T12:05:00Z", "conditions": [
		{"key": "k"}, {"Content-Type": "image/png"}, ["content-length-range", 10, 2000], ["content-length-range", 0, 1000]]}`))
	if err != nil {
		t.Fatal(err)
	}
	lim, err := p.check(policyNow, f, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	if !lim.hasRange || lim.min != 10 || lim.max != 1000 || lim.contentType != "image/png" {
		t.Fatalf("limits %+v, want range 10..1000 and type image/png", lim)
	}
	if !p.expiration.Equal(policyNow.Add(5 * time.Minute)) {
		t.Fatalf("expiration %v", p.expiration)
	}
	for _, at := range []time.Time{policyNow.Add(5 * time.Minute), policyNow.Add(time.Hour)} {
		_, err = p.check(at, f, "b", "k")
		if code, msg := errText(err); code != "AccessDenied" || msg != "Invalid according to Policy: Policy expired." {
			t.Fatalf("at %v: %s %q, want expired", at, code, msg)
		}
	}
	// Fractional seconds are optional, as boto3 writes none.
	if _, err := parsePostPolicy(b64(`{"expiration": "2025-03-01T12:05:00Z", "conditions": []}`)); err != nil {
		t.Fatal(err)
	}
}

// multipartBody builds a form: fields in order, then a file part.
func multipartBody(t testing.TB, fields [][2]string, filename string, file []byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := w.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if file != nil {
		fw, err := w.CreateFormFile("file", filename)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(file)
	}
	w.Close()
	return w.Boundary(), buf.Bytes()
}

func TestReadPostForm(t *testing.T) {
	boundary, body := multipartBody(t, [][2]string{{"Key", "a/${filename}"}, {"X-Amz-Meta-Note", "hi"}}, "cat.png", []byte("PNG..."))
	f, err := readPostForm(multipart.NewReader(bytes.NewReader(body), boundary))
	if err != nil {
		t.Fatal(err)
	}
	if f.fields["key"] != "a/${filename}" || f.names["key"] != "Key" || f.fields["x-amz-meta-note"] != "hi" {
		t.Fatalf("fields %v names %v", f.fields, f.names)
	}
	if f.file == nil || f.key() != "a/cat.png" {
		t.Fatalf("file %v key %q", f.file, f.key())
	}
	data, err := io.ReadAll(f.file)
	if err != nil || string(data) != "PNG..." {
		t.Fatalf("file %q %v", data, err)
	}

	// No file part.
	boundary, body = multipartBody(t, [][2]string{{"key", "k"}}, "", nil)
	f, err = readPostForm(multipart.NewReader(bytes.NewReader(body), boundary))
	if err != nil || f.file != nil {
		t.Fatalf("no file: %v %v", f, err)
	}

	// A file part without filename keeps ${filename} literally.
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("key", "x-${filename}")
	fw, _ := w.CreateFormField("file")
	fw.Write([]byte("data"))
	w.Close()
	f, err = readPostForm(multipart.NewReader(&buf, w.Boundary()))
	if err != nil || f.file == nil || f.key() != "x-${filename}" {
		t.Fatalf("no filename: %+v %v", f, err)
	}

	// Duplicate fields are refused.
	boundary, body = multipartBody(t, [][2]string{{"key", "a"}, {"KEY", "b"}}, "f", []byte("x"))
	if _, err = readPostForm(multipart.NewReader(bytes.NewReader(body), boundary)); err == nil {
		t.Fatal("duplicate field accepted")
	}

	// Fields before the file are limited to 20 KB.
	boundary, body = multipartBody(t, [][2]string{{"key", "k"}, {"x-amz-meta-big", strings.Repeat("v", maxPostPreData)}}, "f", []byte("x"))
	_, err = readPostForm(multipart.NewReader(bytes.NewReader(body), boundary))
	if code, _ := errText(err); code != "MaxPostPreDataLengthExceeded" {
		t.Fatalf("large fields: %v", err)
	}
	// Many small parts hit the raw limit even when their values are empty.
	var many [][2]string
	for range 3000 {
		many = append(many, [2]string{"", ""})
	}
	boundary, body = multipartBody(t, many, "f", []byte("x"))
	limit := &preDataLimit{r: bytes.NewReader(body), left: maxPostPreDataRaw}
	_, err = readPostForm(multipart.NewReader(limit, boundary))
	if code, _ := errText(err); code != "MaxPostPreDataLengthExceeded" {
		t.Fatalf("many parts: %v", err)
	}

	// A truncated body is malformed.
	boundary, body = multipartBody(t, [][2]string{{"key", "k"}}, "f", []byte("x"))
	cut := bytes.Index(body, []byte("\r\n\r\nk")) + 5
	_, err = readPostForm(multipart.NewReader(bytes.NewReader(body[:cut]), boundary))
	if code, _ := errText(err); code != "MalformedPOSTRequest" {
		t.Fatalf("truncated: %v", err)
	}
}

func TestPostHeaders(t *testing.T) {
	h, err := postHeaders(map[string]string{
		"content-type": "image/png", "x-amz-meta-owner": "eric", "cache-control": "no-cache",
		"x-amz-checksum-algorithm": "CRC32", "acl": "private", "key": "k", "policy": "p",
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.Get("Content-Type") != "image/png" || h.Get("X-Amz-Meta-Owner") != "eric" || h.Get("Cache-Control") != "no-cache" ||
		h.Get("X-Amz-Sdk-Checksum-Algorithm") != "CRC32" || h.Get("Acl") != "" || h.Get("Key") != "" {
		t.Fatalf("headers %v", h)
	}
	if _, err := postHeaders(map[string]string{"x-amz-meta-x": "a\r\nInjected: 1"}); err == nil {
		t.Fatal("control characters accepted")
	}
}

// FuzzPostForm reads an arbitrary multipart body as a POST form and
// checks an arbitrary policy document against it: nothing may panic, and
// every failure is an S3 error.
func FuzzPostForm(f *testing.F) {
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuser/${filename}\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--B--\r\n"),
		[]byte(`{"expiration": "2030-01-01T00:00:00Z", "conditions": [["starts-with", "$key", "user/"], ["content-length-range", 0, 10]]}`))
	f.Fuzz(func(t *testing.T, body, policy []byte) {
		isS3 := func(err error) {
			var e *s3err.Error
			if err != nil && !errors.As(err, &e) {
				t.Fatalf("not an S3 error: %v", err)
			}
		}
		limit := &preDataLimit{r: bytes.NewReader(body), left: maxPostPreDataRaw}
		form, err := readPostForm(multipart.NewReader(limit, "B"))
		isS3(err)
		if err != nil {
			return
		}
		if form.file != nil {
			limit.lifted = true
			_, _ = io.Copy(io.Discard, form.file)
		}
		_, err = postHeaders(form.fields)
		isS3(err)
		p, err := parsePostPolicy(base64.StdEncoding.EncodeToString(policy))
		isS3(err)
		if err != nil {
			return
		}
		lim, err := p.check(policyNow, form, "bucket", form.key())
		isS3(err)
		if err == nil && lim.hasRange && lim.min > lim.max {
			// An empty range accepts no file; that is fine, but it must
			// come from the policy.
			return
		}
	})
}
