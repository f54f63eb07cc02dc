package s3api

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"nfyio.dev/storage/internal/s3err"
)

const (
	// maxXMLBody bounds every XML document the server reads: the largest
	// legitimate one is a 1,000-key DeleteObjects or a 10,000-part
	// CompleteMultipartUpload, well under this.
	maxXMLBody  = 4 << 20
	maxXMLDepth = 16
)

// readXML reads a bounded XML request body, verifies the digests the client
// declared for it, and decodes it into v. Malformed, too deep or too large
// documents are refused before anything changes.
func (s *Server) readXML(req *request, cs checksumRequest, v any) error {
	payload, err := req.auth.Body(req.r)
	if err != nil {
		return err
	}
	if n := payload.Length(); n > maxXMLBody {
		return s3err.MaxMessageLengthExceeded
	}
	var buf bytes.Buffer
	h := newBodyHasher(cs.alg)
	n, err := io.Copy(io.MultiWriter(&buf, h), io.LimitReader(payload, maxXMLBody+1))
	if err != nil {
		return bodyError(err)
	}
	if n > maxXMLBody {
		return s3err.MaxMessageLengthExceeded
	}
	if want := payload.Length(); want >= 0 {
		if err := checkBodyLength(n, want); err != nil {
			return err
		}
	}
	if _, _, err := cs.verify(h, payload.Trailer()); err != nil {
		return err
	}
	return decodeXML(buf.Bytes(), v)
}

// decodeXML decodes a document after checking its nesting depth, so that a
// deeply nested body cannot cost more than its size.
func decodeXML(doc []byte, v any) error {
	if len(bytes.TrimSpace(doc)) == 0 {
		return s3err.MalformedXML
	}
	d := xml.NewDecoder(bytes.NewReader(doc))
	depth := 0
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s3err.MalformedXML
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
			if depth > maxXMLDepth {
				return s3err.MalformedXML
			}
		case xml.EndElement:
			depth--
		case xml.Directive:
			// DOCTYPE and entity declarations have no place in S3 bodies.
			return s3err.MalformedXML
		}
	}
	if err := xml.Unmarshal(doc, v); err != nil {
		return s3err.MalformedXML
	}
	return nil
}

// xmlBufs recycles response documents: a 1,000-key listing is some 250 KB,
// which xml.Marshal would grow (and the GC collect) for every page.
var xmlBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeXML sends v as an XML response.
func writeXML(w http.ResponseWriter, status int, v any) error {
	buf := xmlBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		// A rare huge document must not stay pinned in the pool.
		if buf.Cap() <= 1<<20 {
			xmlBufs.Put(buf)
		}
	}()
	if err := xml.NewEncoder(buf).Encode(v); err != nil {
		return s3err.InternalError.Wrap(err)
	}
	b := buf.Bytes()
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(b)+len(xml.Header)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(b)
	return nil
}
