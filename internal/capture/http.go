package capture

import "bytes"

// httpResult is what a look at the start of a request found.
type httpResult uint8

const (
	httpNotRequest httpResult = iota // not an HTTP/1.x request: stop looking
	httpMore                         // headers cut short: wait for more bytes
	httpNoHost                       // complete headers without Host
	httpHost                         // found; the value is returned
)

// maxHeaders bounds the request head waited for per flow.
const maxHeaders = 8 << 10

var httpMethods = [...][]byte{
	[]byte("GET "), []byte("POST "), []byte("HEAD "), []byte("PUT "),
	[]byte("DELETE "), []byte("OPTIONS "), []byte("PATCH "), []byte("CONNECT "),
	[]byte("TRACE "),
}

// isHTTPMethod is the cheap first test run on every TCP payload.
func isHTTPMethod(p []byte) bool {
	if len(p) < 4 || p[0] < 'C' || p[0] > 'T' {
		return false
	}
	for _, m := range httpMethods {
		if bytes.HasPrefix(p, m) {
			return true
		}
	}
	return false
}

// requestHost returns the Host header value of the HTTP/1.x request at the
// start of p. Only the request line and header names are looked at; the
// path and every other header value are skipped unread.
func requestHost(p []byte) ([]byte, httpResult) {
	if !isHTTPMethod(p) {
		return nil, httpNotRequest
	}
	if len(p) > maxHeaders {
		p = p[:maxHeaders]
	}
	eol := bytes.IndexByte(p, '\n')
	if eol < 0 {
		if len(p) == maxHeaders {
			return nil, httpNotRequest
		}
		return nil, httpMore
	}
	line := bytes.TrimSuffix(p[:eol], []byte("\r"))
	if sp := bytes.LastIndexByte(line, ' '); sp < 0 || !bytes.HasPrefix(line[sp+1:], []byte("HTTP/1.")) {
		return nil, httpNotRequest
	}
	rest := p[eol+1:]
	for {
		eol = bytes.IndexByte(rest, '\n')
		if eol < 0 {
			if len(p) == maxHeaders {
				return nil, httpNotRequest
			}
			return nil, httpMore
		}
		line = bytes.TrimSuffix(rest[:eol], []byte("\r"))
		rest = rest[eol+1:]
		if len(line) == 0 {
			return nil, httpNoHost
		}
		if len(line) > 5 && line[4] == ':' && asciiEqualFold(line[:4], "host") {
			v := bytes.TrimSpace(line[5:])
			if bytes.IndexByte(v, '\r') >= 0 { // a bare CR: malformed, RFC 9112 section 2.2
				return nil, httpNotRequest
			}
			if len(v) == 0 {
				return nil, httpNoHost
			}
			return v, httpHost
		}
	}
}

func asciiEqualFold(b []byte, lower string) bool {
	for i := range b {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}
