package iam_test

import (
	"testing"
	"time"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/storage"
)

func TestCheckPresignPolicy(t *testing.T) {
	k := storage.AccessKey{ID: "K", MaxURLTTL: 15 * time.Minute, MaxObjectSize: 10 << 20, ContentTypes: []string{"image/*", "application/pdf"}}
	cases := []struct {
		name    string
		ttl     time.Duration
		op      string
		length  int64
		ctype   string
		deny    string
		allowed bool
	}{
		{"put within limits", 15 * time.Minute, "PutObject", 1 << 20, "image/png", "", true},
		{"put pdf with charset", time.Minute, "PutObject", 0, "application/PDF; charset=binary", "", true},
		{"ttl too long", time.Hour, "GetObject", -1, "", "URL lifetime 1h0m0s exceeds the key's limit of 15m0s", false},
		{"get within ttl", 10 * time.Minute, "GetObject", -1, "", "", true},
		{"unsigned size", time.Minute, "PutObject", -1, "image/png", "upload size must be signed", false},
		{"too large", time.Minute, "PutObject", 10<<20 + 1, "image/png", "upload size 10485761 exceeds the key's limit of 10485760 bytes", false},
		{"exact limit", time.Minute, "PutObject", 10 << 20, "image/png", "", true},
		{"unsigned type", time.Minute, "PutObject", 5, "", "content type must be signed", false},
		{"html", time.Minute, "PutObject", 5, "text/html", "content type text/html is not allowed", false},
		{"bad type", time.Minute, "PutObject", 5, "image", "content type image is not allowed", false},
		{"post policy", time.Minute, "PostObject", 1 << 20, "image/jpeg", "", true},
		{"post without range", time.Minute, "PostObject", -1, "image/jpeg", "upload size must be signed", false},
		{"part needs size", time.Minute, "UploadPart", -1, "", "upload size must be signed", false},
		{"part without type", time.Minute, "UploadPart", 5 << 20, "", "", true},
		{"create multipart type", time.Minute, "CreateMultipartUpload", -1, "text/html", "content type text/html is not allowed", false},
		{"create multipart ok", time.Minute, "CreateMultipartUpload", -1, "image/webp", "", true},
		{"delete ignores size and type", time.Minute, "DeleteObject", -1, "", "", true},
	}
	for _, c := range cases {
		err := iam.CheckPresignPolicy(k, c.ttl, c.op, c.length, c.ctype)
		if c.allowed {
			if err != nil {
				t.Errorf("%s: %v, want allowed", c.name, err)
			}
			continue
		}
		accessDenied(t, err, "Access Denied: "+c.deny, c.name)
	}

	// A key without a policy allows anything.
	free := storage.AccessKey{ID: "F"}
	if iam.HasPresignPolicy(free) {
		t.Error("HasPresignPolicy on a key without limits")
	}
	if !iam.HasPresignPolicy(k) {
		t.Error("HasPresignPolicy false on a limited key")
	}
	if err := iam.CheckPresignPolicy(free, 7*24*time.Hour, "PutObject", -1, ""); err != nil {
		t.Errorf("unlimited key: %v", err)
	}
	accessDenied(t, iam.CheckObjectSize(k, 11<<20), "exceeds the key's limit", "multipart total")
	if err := iam.CheckObjectSize(free, 1<<40); err != nil {
		t.Errorf("CheckObjectSize unlimited: %v", err)
	}
	// Copies: the type the new object gets, whatever the signature says.
	accessDenied(t, iam.CheckContentType(k, "text/html"), "Access Denied: content type text/html is not allowed for this key", "copy type")
	accessDenied(t, iam.CheckContentType(k, ""), "Access Denied: content type  is not allowed", "copy without type")
	for _, ct := range []string{"image/png", "application/pdf; charset=binary"} {
		if err := iam.CheckContentType(k, ct); err != nil {
			t.Errorf("CheckContentType(%q): %v", ct, err)
		}
	}
	if err := iam.CheckContentType(free, "text/html"); err != nil {
		t.Errorf("CheckContentType unlimited: %v", err)
	}
}

func TestContentTypeAllowed(t *testing.T) {
	cases := []struct {
		patterns []string
		ct       string
		want     bool
	}{
		{[]string{"image/*"}, "image/png", true},
		{[]string{"image/*"}, "IMAGE/PNG", true},
		{[]string{"image/*"}, "imagex/png", false},
		{[]string{"image/*"}, "text/plain", false},
		{[]string{"image/png"}, "image/png;q=1", true},
		{[]string{"image/png"}, "image/pngx", false},
		{[]string{"*/*"}, "anything/else", true},
		{[]string{"text/plain"}, "", false},
		{[]string{"text/plain"}, "text/plain; charset", false},
		{nil, "text/plain", false},
	}
	for _, c := range cases {
		if got := iam.ContentTypeAllowed(c.patterns, c.ct); got != c.want {
			t.Errorf("ContentTypeAllowed(%v, %q) = %v, want %v", c.patterns, c.ct, got, c.want)
		}
	}
}
