// Package s3err defines S3's error vocabulary: the code, HTTP status and
// message of each error a client can receive, plus the extra elements some
// errors carry (StringToSign, ServerTime, HeadersNotSigned, ...).
//
// Every package that can fail a request (signature checks, handlers, storage
// adapters) returns *Error so that the HTTP layer writes one XML shape.
package s3err

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
)

// Field is an extra child element of <Error>, kept in order.
type Field struct {
	Name  string
	Value string
}

// Error is an S3 error response.
type Error struct {
	Code    string
	Message string
	Status  int
	Fields  []Field
	// Resource is filled in by the HTTP layer when it is empty.
	Resource string
	// Cause is an internal error kept for logs; never sent to the client.
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// With returns a copy of e with extra elements appended.
func (e *Error) With(fields ...Field) *Error {
	c := *e
	c.Fields = append(append([]Field(nil), e.Fields...), fields...)
	return &c
}

// WithMessage returns a copy of e with another message.
func (e *Error) WithMessage(msg string) *Error {
	c := *e
	c.Message = msg
	return &c
}

// Wrap returns a copy of e that remembers cause for the logs.
func (e *Error) Wrap(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// As returns err as *Error, or InternalError wrapping it.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return InternalError.Wrap(err)
}

// MarshalXML writes <Error><Code/><Message/>extra...<Resource/><RequestId/></Error>.
// The request id is added by the HTTP layer through WriteXML.
func (e *Error) xmlBody(requestID, hostID string) []byte {
	type kv struct {
		XMLName xml.Name
		Value   string `xml:",chardata"`
	}
	out := []byte(xml.Header)
	buf := struct {
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
		Message string   `xml:"Message"`
		Extra   []kv
		Res     string `xml:"Resource,omitempty"`
		ReqID   string `xml:"RequestId"`
		HostID  string `xml:"HostId,omitempty"`
	}{Code: e.Code, Message: e.Message, Res: e.Resource, ReqID: requestID, HostID: hostID}
	for _, f := range e.Fields {
		buf.Extra = append(buf.Extra, kv{XMLName: xml.Name{Local: f.Name}, Value: f.Value})
	}
	b, err := xml.Marshal(buf)
	if err != nil {
		// Every field is a plain string; Marshal cannot fail on them.
		panic(err)
	}
	return append(out, b...)
}

// Write sends e as an S3 XML error response. HEAD responses carry no body.
func (e *Error) Write(w http.ResponseWriter, r *http.Request, requestID, hostID string) {
	body := e.xmlBody(requestID, hostID)
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	if r.Method == http.MethodHead {
		w.WriteHeader(e.Status)
		return
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

func def(code string, status int, msg string) *Error {
	return &Error{Code: code, Status: status, Message: msg}
}

// The S3 errors the store returns. Messages follow the S3 API reference.
var (
	AccessDenied                      = def("AccessDenied", 403, "Access Denied")
	AuthorizationHeaderMalformed      = def("AuthorizationHeaderMalformed", 400, "The authorization header is malformed.")
	AuthorizationQueryParametersError = def("AuthorizationQueryParametersError", 400, "Error parsing the X-Amz-Credential parameter.")
	BadDigest                         = def("BadDigest", 400, "The Content-MD5 you specified did not match what we received.")
	BucketAlreadyExists               = def("BucketAlreadyExists", 409, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.")
	BucketAlreadyOwnedByYou           = def("BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket succeeded and you already own it.")
	BucketNotEmpty                    = def("BucketNotEmpty", 409, "The bucket you tried to delete is not empty")
	EntityTooLarge                    = def("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size")
	EntityTooSmall                    = def("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size.")
	IncompleteBody                    = def("IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	InternalError                     = def("InternalError", 500, "We encountered an internal error. Please try again.")
	InvalidAccessKeyID                = def("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records.")
	InvalidArgument                   = def("InvalidArgument", 400, "Invalid Argument")
	InvalidBucketName                 = def("InvalidBucketName", 400, "The specified bucket is not valid.")
	InvalidDigest                     = def("InvalidDigest", 400, "The Content-MD5 you specified is not valid.")
	InvalidPart                       = def("InvalidPart", 400, "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
	InvalidPartOrder                  = def("InvalidPartOrder", 400, "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
	InvalidURI                        = def("InvalidURI", 400, "Couldn't parse the specified URI.")
	InvalidPartNumber                 = def("InvalidPartNumber", 416, "The requested partnumber is not satisfiable")
	InvalidRange                      = def("InvalidRange", 416, "The requested range is not satisfiable")
	InvalidRequest                    = def("InvalidRequest", 400, "Invalid Request")
	InvalidStorageClass               = def("InvalidStorageClass", 400, "The storage class you specified is not valid")
	KeyTooLongError                   = def("KeyTooLongError", 400, "Your key is too long")
	MalformedXML                      = def("MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema.")
	MalformedPOSTRequest              = def("MalformedPOSTRequest", 400, "The body of your POST request is not well-formed multipart/form-data.")
	MalformedPolicy                   = def("MalformedPolicy", 400, "Policy has invalid resource.")
	MaxMessageLengthExceeded          = def("MaxMessageLengthExceeded", 400, "Your request was too big.")
	MetadataTooLarge                  = def("MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size.")
	MethodNotAllowed                  = def("MethodNotAllowed", 405, "The specified method is not allowed against this resource.")
	MissingContentLength              = def("MissingContentLength", 411, "You must provide the Content-Length HTTP header.")
	MissingSecurityHeader             = def("MissingSecurityHeader", 400, "Your request is missing a required header.")
	NoSuchBucket                      = def("NoSuchBucket", 404, "The specified bucket does not exist")
	NoSuchCORSConfiguration           = def("NoSuchCORSConfiguration", 404, "The CORS configuration does not exist")
	NoSuchKey                         = def("NoSuchKey", 404, "The specified key does not exist.")
	NoSuchUpload                      = def("NoSuchUpload", 404, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
	NoSuchVersion                     = def("NoSuchVersion", 404, "The specified version does not exist.")
	NotImplemented                    = def("NotImplemented", 501, "A header you provided implies functionality that is not implemented")
	NotModified                       = def("NotModified", 304, "Not Modified")
	PreconditionFailed                = def("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold")
	RequestTimeTooSkewed              = def("RequestTimeTooSkewed", 403, "The difference between the request time and the server's time is too large.")
	SignatureDoesNotMatch             = def("SignatureDoesNotMatch", 403, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	SlowDown                          = def("SlowDown", 503, "Please reduce your request rate.")
	ServiceUnavailable                = def("ServiceUnavailable", 503, "Service is unable to handle request.")
	XAmzContentSHA256Mismatch         = def("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	InvalidChunkSizeError             = def("InvalidChunkSizeError", 403, "Only the last chunk is allowed to have a size less than 8192 bytes")
	MissingFields                     = def("MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema.")
	InvalidEncryptionAlgorithmError   = def("InvalidEncryptionAlgorithmError", 400, "The encryption request you specified is not valid.")
	ConditionalRequestConflict        = def("ConditionalRequestConflict", 409, "A conflicting conditional operation is currently in progress against this resource. Please try again.")
	IllegalVersioningConfiguration    = def("IllegalVersioningConfigurationException", 400, "The versioning configuration specified in the request is invalid.")
	StorageFull                       = def("InsufficientStorage", 507, "The server does not have enough storage space to complete the request.")
)
