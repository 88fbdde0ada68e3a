package codec

// Error is one kind of HTTP/1.1 protocol error. The set is closed: every
// grammar error and every limit violation the codec reports is one of the
// constants below, so callers can switch on it or use errors.Is.
//
// Status gives the response status a server sends for the kind; this table
// is the only place in loophttp that maps a protocol error to a status code.
type Error uint8

// The error kinds. Each comment names the rule that is broken.
const (
	_ Error = iota

	// ErrLineEnding: a bare CR or a bare LF (RFC 9112 §2.2; policy bare-lf, bare-cr).
	ErrLineEnding
	// ErrMethod: the method is not a token (RFC 9110 §9.1).
	ErrMethod
	// ErrStartLineSpace: not exactly one SP between start-line elements
	// (RFC 9112 §3; policy start-line-whitespace).
	ErrStartLineSpace
	// ErrTarget: the request-target is empty or breaks its form's grammar
	// (RFC 9112 §3.2; policy target-strict).
	ErrTarget
	// ErrVersion: the HTTP-version does not match "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3).
	ErrVersion
	// ErrVersionUnsupported: a major version other than 1 (RFC 9110 §15.6.6: 505).
	ErrVersionUnsupported
	// ErrStatus: a status code that is not three digits in 100..599 (RFC 9112 §4).
	ErrStatus
	// ErrReason: a reason phrase with a control character (RFC 9112 §4).
	ErrReason
	// ErrFieldName: an empty field name, a non-token byte in it, or
	// whitespace before the colon (RFC 9112 §5.1).
	ErrFieldName
	// ErrFieldValue: a control character in a field value (RFC 9110 §5.5;
	// policy ctl-in-value).
	ErrFieldValue
	// ErrObsFold: line folding in a request, or a whitespace-led line right
	// after the start-line (RFC 9112 §5.2, §2.2).
	ErrObsFold
	// ErrHost: a missing, repeated or invalid Host in a request (RFC 9112 §3.2).
	ErrHost
	// ErrContentLength: an invalid, repeated or overflowing Content-Length
	// (RFC 9110 §8.6; policy cl-duplicates).
	ErrContentLength
	// ErrTransferEncoding: a Transfer-Encoding list that is malformed, names
	// chunked twice or not last, or appears in HTTP/1.0 (RFC 9112 §6.1;
	// policies te-strict, te-http10).
	ErrTransferEncoding
	// ErrFramingConflict: Content-Length together with Transfer-Encoding
	// (RFC 9112 §6.1; policy cl-te-conflict).
	ErrFramingConflict
	// ErrTransferCoding: a transfer coding other than chunked (RFC 9112 §6.1: 501).
	ErrTransferCoding
	// ErrChunkSize: a chunk-size that is not 1*HEXDIG or is 2^63 or more (RFC 9112 §7.1).
	ErrChunkSize
	// ErrChunkExtension: a malformed chunk extension (RFC 9112 §7.1.1).
	ErrChunkExtension
	// ErrChunkData: chunk data not followed by CRLF (RFC 9112 §7.1).
	ErrChunkData
	// ErrTrailer: a trailer field that must not be sent as a trailer
	// (RFC 9110 §6.5.1; policy trailer-framing-fields).
	ErrTrailer
	// ErrChunkLineTooLong: a chunk-size line, or the chunk extensions of one
	// message, over the limit (RFC 9112 §7.1.1).
	ErrChunkLineTooLong
	// ErrStartLineTooLong: a request-line (or status-line) over the limit (414).
	ErrStartLineTooLong
	// ErrFieldLineTooLong: one field line over the limit (RFC 9110 §5.4: 431).
	ErrFieldLineTooLong
	// ErrTooManyFields: more field lines in a section than the limit (431).
	ErrTooManyFields
	// ErrHeaderTooLarge: a field section over the byte limit (431).
	ErrHeaderTooLarge
	// ErrBodyTooLarge: a declared body length or chunk over the body limit (413).
	ErrBodyTooLarge

	errorCount
)

var errorText = [errorCount]string{
	ErrLineEnding:         "bare CR or LF",
	ErrMethod:             "invalid method",
	ErrStartLineSpace:     "invalid whitespace in start-line",
	ErrTarget:             "invalid request-target",
	ErrVersion:            "invalid HTTP-version",
	ErrVersionUnsupported: "unsupported HTTP version",
	ErrStatus:             "invalid status code",
	ErrReason:             "invalid reason phrase",
	ErrFieldName:          "invalid field name",
	ErrFieldValue:         "invalid field value",
	ErrObsFold:            "obsolete line folding",
	ErrHost:               "missing, repeated or invalid Host",
	ErrContentLength:      "invalid Content-Length",
	ErrTransferEncoding:   "invalid Transfer-Encoding",
	ErrFramingConflict:    "Content-Length with Transfer-Encoding",
	ErrTransferCoding:     "unsupported transfer coding",
	ErrChunkSize:          "invalid chunk size",
	ErrChunkExtension:     "invalid chunk extension",
	ErrChunkData:          "chunk data not ended by CRLF",
	ErrTrailer:            "forbidden trailer field",
	ErrChunkLineTooLong:   "chunk line too long",
	ErrStartLineTooLong:   "start-line too long",
	ErrFieldLineTooLong:   "field line too long",
	ErrTooManyFields:      "too many fields",
	ErrHeaderTooLarge:     "field section too large",
	ErrBodyTooLarge:       "body too large",
}

var errorStatus = [errorCount]int{
	ErrVersionUnsupported: 505,
	ErrTransferCoding:     501,
	ErrStartLineTooLong:   414,
	ErrFieldLineTooLong:   431,
	ErrTooManyFields:      431,
	ErrHeaderTooLarge:     431,
	ErrBodyTooLarge:       413,
}

// Error returns a short description prefixed with "http: ".
func (e Error) Error() string {
	if e == 0 || e >= errorCount {
		return "http: unknown protocol error"
	}
	return "http: " + errorText[e]
}

// Status returns the status code a server answers this kind with:
// 400, 413, 414, 431, 501 or 505.
func (e Error) Status() int {
	if e < errorCount && errorStatus[e] != 0 {
		return errorStatus[e]
	}
	return 400
}
