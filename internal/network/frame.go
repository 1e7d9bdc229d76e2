package network

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors of request decoding. Each closes the connection.
var (
	ErrFrameSize          = errors.New("network: invalid frame size")
	ErrMalformedHeader    = errors.New("network: malformed request header")
	ErrUnknownAPIKey      = errors.New("network: unknown api key")
	ErrUnsupportedVersion = errors.New("network: unsupported api version")
	ErrMalformedRequest   = errors.New("network: malformed request body")
)

// apiVersionsKey is the API key of ApiVersions, whose response header is
// always v0 and whose too-new versions are answered (KIP-511).
const apiVersionsKey = 18

// minHeaderBytes is the smallest request header: key, version, correlation
// id and a client id length.
const minHeaderBytes = 2 + 2 + 4 + 2

// RequestHeader is the header of one request.
type RequestHeader struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	// ClientID is the client id; "" when the client sent null (Kafka
	// treats null as empty too).
	ClientID string
}

// Versions is optionally implemented by a Handler that serves only some
// API keys and versions. Without it, every key and version kmsg knows is
// passed on.
type Versions interface {
	// VersionRange returns the versions of key the handler serves; ok is
	// false when it does not serve key at all.
	VersionRange(key int16) (minVersion, maxVersion int16, ok bool)
}

// CheckFrameSize validates the 4-byte size prefix of a request against the
// limit before anything is allocated for the frame.
func CheckFrameSize(size, maxBytes int32) error {
	if size < minHeaderBytes || size > maxBytes {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrFrameSize, size, maxBytes)
	}
	return nil
}

// ParseRequest decodes a request frame (the bytes after the size prefix):
// header, header tags for flexible versions, and body. versions may be nil
// (serve everything kmsg knows).
//
// A too-new or unserved ApiVersions version is not an error: the request
// comes back with its version set and its body undecoded, for the handler
// to answer in the v0 format (KIP-511).
//
// Bytes fields of the returned request (for example produce records) alias
// frame; strings are copies.
func ParseRequest(frame []byte, versions Versions) (RequestHeader, kmsg.Request, error) {
	return parseRequest(frame, versions, "")
}

// parseRequest is ParseRequest reusing prevClientID when the client id is
// unchanged (the common case: one client id per connection), which saves
// an allocation per request.
func parseRequest(frame []byte, versions Versions, prevClientID string) (RequestHeader, kmsg.Request, error) {
	var h RequestHeader
	if len(frame) < minHeaderBytes {
		return h, nil, fmt.Errorf("%w: %d bytes", ErrMalformedHeader, len(frame))
	}
	h.APIKey = int16(binary.BigEndian.Uint16(frame[0:]))
	h.APIVersion = int16(binary.BigEndian.Uint16(frame[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(frame[4:]))
	idLen := int(int16(binary.BigEndian.Uint16(frame[8:])))
	rest := frame[minHeaderBytes:]
	if idLen > 0 {
		if idLen > len(rest) {
			return h, nil, fmt.Errorf("%w: client id of %d bytes in %d", ErrMalformedHeader, idLen, len(rest))
		}
		if id := rest[:idLen]; string(id) == prevClientID {
			h.ClientID = prevClientID
		} else {
			h.ClientID = string(id)
		}
		rest = rest[idLen:]
	} else if idLen < -1 {
		return h, nil, fmt.Errorf("%w: client id length %d", ErrMalformedHeader, idLen)
	}

	req := kmsg.RequestForKey(h.APIKey)
	if req == nil {
		return h, nil, fmt.Errorf("%w: %d", ErrUnknownAPIKey, h.APIKey)
	}
	lo, hi := int16(0), req.MaxVersion()
	if versions != nil {
		var ok bool
		if lo, hi, ok = versions.VersionRange(h.APIKey); !ok {
			return h, nil, fmt.Errorf("%w: %d (%s) is not served", ErrUnknownAPIKey, h.APIKey, kmsg.NameForKey(h.APIKey))
		}
		hi = min(hi, req.MaxVersion())
	}
	req.SetVersion(h.APIVersion)
	if h.APIVersion < lo || h.APIVersion > hi {
		if h.APIKey == apiVersionsKey && h.APIVersion > hi {
			return h, req, nil
		}
		return h, nil, fmt.Errorf("%w: %s v%d (serving v%d-v%d)", ErrUnsupportedVersion, kmsg.NameForKey(h.APIKey), h.APIVersion, lo, hi)
	}
	if req.IsFlexible() {
		r := kbin.Reader{Src: rest}
		kmsg.SkipTags(&r)
		if err := r.Complete(); err != nil {
			return h, nil, fmt.Errorf("%w: header tags: %v", ErrMalformedHeader, err)
		}
		rest = r.Src
	}
	if err := req.ReadFrom(rest); err != nil {
		return h, nil, fmt.Errorf("%w: %s v%d: %v", ErrMalformedRequest, kmsg.NameForKey(h.APIKey), h.APIVersion, err)
	}
	return h, req, nil
}

// AppendResponse appends a response frame (size, header, body) to dst.
func AppendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		dst = append(dst, 0) // response header v1: empty tag section
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
