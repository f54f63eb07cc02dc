package presign_test

import (
	"fmt"
	"net/http"
	"time"

	"nfyio.dev/storage/presign"
)

func ExampleSigner_Presign() {
	s := &presign.Signer{
		Endpoint:    "https://storage.example.com",
		Region:      "us-east-1",
		Credentials: presign.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
		// A fixed clock makes the output reproducible; leave Now nil in use.
		Now: func() time.Time { return time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC) },
	}
	u, err := s.Presign("photos", "2024/cat.jpg", presign.Options{
		Method:      http.MethodPut,
		Expires:     15 * time.Minute,
		ContentType: "image/jpeg",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(u.Method, u.URL)
	fmt.Println("Content-Type:", u.Headers.Get("Content-Type"))
	fmt.Println("valid until", u.Expires.Format(time.RFC3339))
	// Output:
	// PUT https://storage.example.com/photos/2024/cat.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240501%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240501T120000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=content-type%3Bhost&X-Amz-Signature=90ecaa16970638c0e20b29c7ce889549436f86c1f0ae981048b1866f55124906
	// Content-Type: image/jpeg
	// valid until 2024-05-01T12:15:00Z
}

func ExampleSigner_PresignPost() {
	s := &presign.Signer{
		Endpoint:    "https://storage.example.com",
		Credentials: presign.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
	}
	post, err := s.PresignPost("uploads", presign.PostOptions{
		KeyStartsWith:         "user/42/",
		ContentTypeStartsWith: "image/",
		MaxSize:               10 << 20,
	})
	if err != nil {
		panic(err)
	}
	// An HTML form posts every field, then the file, to post.URL.
	fmt.Println(post.URL)
	fmt.Println(post.Fields["key"])
	// Output:
	// https://storage.example.com/uploads
	// user/42/${filename}
}
