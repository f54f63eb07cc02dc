// Package cors holds a bucket's cross-origin resource sharing rules: it
// parses and validates the CORSConfiguration document of PutBucketCors the
// way S3 does, writes it back for GetBucketCors, and matches preflight
// (OPTIONS) and actual requests against the rules.
//
// Matching follows S3: the first rule whose origin and method match wins;
// a preflight also needs every requested header to be allowed by that rule.
// An origin or allowed header may hold one '*' wildcard, which matches any
// run of characters (empty included).
package cors

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"

	"nfyio.dev/storage/internal/s3err"
)

// Limits S3 applies to a CORS configuration.
const (
	MaxRules = 100
	// MaxDocumentSize bounds the XML document (S3: 64 KB).
	MaxDocumentSize = 64 << 10
	maxIDLength     = 255
)

// Methods are the HTTP methods a rule may allow, in S3's order.
var Methods = []string{"GET", "PUT", "POST", "DELETE", "HEAD"}

const namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

// Rule is one CORSRule.
type Rule struct {
	ID             string
	AllowedOrigins []string
	AllowedMethods []string
	AllowedHeaders []string
	ExposeHeaders  []string
	// MaxAgeSeconds is -1 when the rule has none.
	MaxAgeSeconds int
}

// Config is a bucket's CORS configuration.
type Config struct {
	Rules []Rule
}

// Parse decodes and validates a CORSConfiguration document. Errors are
// *s3err.Error values as S3 returns them: MalformedXML for a document that
// does not follow the schema, InvalidRequest for values S3 refuses.
func Parse(doc []byte) (*Config, error) {
	if len(doc) > MaxDocumentSize {
		return nil, s3err.MaxMessageLengthExceeded
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, s3err.MalformedXML
	}
	var c Config
	d := xml.NewDecoder(bytes.NewReader(doc))
	// Up to the root element: a DOCTYPE (entity declarations) is refused.
	var root xml.StartElement
	for root.Name.Local == "" {
		tok, err := d.Token()
		if err != nil {
			return nil, s3err.MalformedXML
		}
		switch t := tok.(type) {
		case xml.StartElement:
			root = t
		case xml.Directive, xml.EndElement:
			return nil, s3err.MalformedXML
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, s3err.MalformedXML
			}
		}
	}
	if err := d.DecodeElement(&c, &root); err != nil {
		var e *s3err.Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, s3err.MalformedXML
	}
	// Nothing but white space, comments and processing instructions may
	// follow the root element.
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, s3err.MalformedXML
		}
		switch t := tok.(type) {
		case xml.Comment, xml.ProcInst:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, s3err.MalformedXML
			}
		default:
			return nil, s3err.MalformedXML
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// UnmarshalXML reads a CORSConfiguration strictly: unknown elements,
// nested markup inside values, and rules without an origin or method are
// MalformedXML, as in S3, rather than silently ignored.
func (c *Config) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if start.Name.Local != "CORSConfiguration" || !okNamespace(start.Name.Space) {
		return s3err.MalformedXML
	}
	c.Rules = nil
	for {
		tok, err := d.Token()
		if err != nil {
			return s3err.MalformedXML
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "CORSRule" || !okNamespace(t.Name.Space) {
				return s3err.MalformedXML
			}
			if len(c.Rules) == MaxRules {
				return s3err.MalformedXML
			}
			r, err := decodeRule(d)
			if err != nil {
				return err
			}
			c.Rules = append(c.Rules, r)
		case xml.EndElement:
			return nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return s3err.MalformedXML
			}
		case xml.Directive:
			return s3err.MalformedXML
		}
	}
}

func okNamespace(ns string) bool { return ns == "" || ns == namespace }

func decodeRule(d *xml.Decoder) (Rule, error) {
	r := Rule{MaxAgeSeconds: -1}
	seen := map[string]bool{}
	for {
		tok, err := d.Token()
		if err != nil {
			return r, s3err.MalformedXML
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if !okNamespace(t.Name.Space) {
				return r, s3err.MalformedXML
			}
			v, err := leafText(d)
			if err != nil {
				return r, err
			}
			name := t.Name.Local
			switch name {
			case "AllowedOrigin":
				r.AllowedOrigins = append(r.AllowedOrigins, v)
			case "AllowedMethod":
				r.AllowedMethods = append(r.AllowedMethods, v)
			case "AllowedHeader":
				r.AllowedHeaders = append(r.AllowedHeaders, v)
			case "ExposeHeader":
				r.ExposeHeaders = append(r.ExposeHeaders, v)
			case "ID", "MaxAgeSeconds":
				// Single-valued elements.
				if seen[name] {
					return r, s3err.MalformedXML
				}
				seen[name] = true
				if name == "ID" {
					r.ID = v
					break
				}
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil || n < 0 || n > 1<<31-1 {
					return r, s3err.MalformedXML
				}
				r.MaxAgeSeconds = n
			default:
				return r, s3err.MalformedXML
			}
		case xml.EndElement:
			if len(r.AllowedOrigins) == 0 || len(r.AllowedMethods) == 0 {
				return r, s3err.MalformedXML
			}
			return r, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return r, s3err.MalformedXML
			}
		case xml.Directive:
			return r, s3err.MalformedXML
		}
	}
}

// leafText reads the text of an element that must hold only text.
func leafText(d *xml.Decoder) (string, error) {
	var sb strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", s3err.MalformedXML
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.EndElement:
			return sb.String(), nil
		case xml.Comment, xml.ProcInst:
		default:
			return "", s3err.MalformedXML
		}
	}
}

// Validate applies S3's value rules. The messages are S3's.
func (c *Config) Validate() error {
	if len(c.Rules) == 0 || len(c.Rules) > MaxRules {
		return s3err.MalformedXML
	}
	for i := range c.Rules {
		if err := c.Rules[i].validate(); err != nil {
			return err
		}
	}
	return nil
}

func (r *Rule) validate() error {
	if len(r.AllowedOrigins) == 0 || len(r.AllowedMethods) == 0 {
		return s3err.MalformedXML
	}
	if len(r.ID) > maxIDLength {
		return s3err.InvalidArgument.WithMessage("The ID of a CORS rule can not be longer than 255 characters.")
	}
	if r.MaxAgeSeconds < -1 {
		return s3err.MalformedXML
	}
	for _, m := range r.AllowedMethods {
		if !isMethod(m) {
			return s3err.InvalidRequest.WithMessage("Found unsupported HTTP method in CORS config. Unsupported method is " + m)
		}
	}
	for _, o := range r.AllowedOrigins {
		if o == "" {
			return s3err.MalformedXML
		}
		if strings.Count(o, "*") > 1 {
			return s3err.InvalidRequest.WithMessage(`AllowedOrigin "` + o + `" can not have more than one wildcard.`)
		}
		if !printable(o) {
			return s3err.InvalidRequest.WithMessage(`AllowedOrigin "` + o + `" contains invalid character.`)
		}
	}
	for _, h := range r.AllowedHeaders {
		if strings.Count(h, "*") > 1 {
			return s3err.InvalidRequest.WithMessage(`AllowedHeader "` + h + `" can not have more than one wildcard.`)
		}
		if !headerPattern(h) {
			return s3err.InvalidRequest.WithMessage(`AllowedHeader "` + h + `" contains invalid character.`)
		}
	}
	for _, h := range r.ExposeHeaders {
		if strings.Contains(h, "*") {
			return s3err.InvalidRequest.WithMessage(`ExposeHeader "` + h + `" contains wildcard. We currently do not support wildcard for ExposeHeader.`)
		}
		if h == "" || !headerPattern(h) {
			return s3err.InvalidRequest.WithMessage(`ExposeHeader "` + h + `" contains invalid character.`)
		}
	}
	return nil
}

func isMethod(m string) bool {
	for _, k := range Methods {
		if m == k {
			return true
		}
	}
	return false
}

// printable reports whether s can be sent back as a header value: origins
// are echoed in Access-Control-Allow-Origin.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// headerPattern reports whether s is an HTTP token, '*' allowed: header
// names are echoed in response headers, so nothing else may pass.
func headerPattern(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// xmlRule and xmlConfig are the document GetBucketCors returns, in the
// element order of the S3 API reference.
type xmlRule struct {
	ID             string   `xml:"ID,omitempty"`
	AllowedHeaders []string `xml:"AllowedHeader"`
	AllowedMethods []string `xml:"AllowedMethod"`
	AllowedOrigins []string `xml:"AllowedOrigin"`
	ExposeHeaders  []string `xml:"ExposeHeader"`
	MaxAgeSeconds  *int     `xml:"MaxAgeSeconds"`
}

type xmlConfig struct {
	XMLName xml.Name  `xml:"CORSConfiguration"`
	NS      string    `xml:"xmlns,attr"`
	Rules   []xmlRule `xml:"CORSRule"`
}

// Marshal returns the configuration as an XML document (with the XML
// declaration), the form it is stored and served in.
func (c *Config) Marshal() []byte {
	doc := xmlConfig{NS: namespace}
	for _, r := range c.Rules {
		xr := xmlRule{ID: r.ID, AllowedHeaders: r.AllowedHeaders, AllowedMethods: r.AllowedMethods,
			AllowedOrigins: r.AllowedOrigins, ExposeHeaders: r.ExposeHeaders}
		if r.MaxAgeSeconds >= 0 {
			n := r.MaxAgeSeconds
			xr.MaxAgeSeconds = &n
		}
		doc.Rules = append(doc.Rules, xr)
	}
	b, err := xml.Marshal(doc)
	if err != nil {
		// Only strings and ints: Marshal cannot fail on them.
		panic(err)
	}
	return append([]byte(xml.Header), b...)
}
