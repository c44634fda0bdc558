package testenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// errBadFrame is a request frame whose size no Kafka request has.
var errBadFrame = errors.New("bad request frame")

// readKafkaRequest reads one Kafka request frame from r: its 4-byte size,
// then that many bytes (key, version, correlation id and the rest), and
// returns the whole frame, size included, as the broker behind the test
// listeners must receive it. A size below the request header's 8 bytes or
// above max is an error; the caller refuses the connection.
func readKafkaRequest(r io.Reader, max uint32) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 8 || n > max {
		return nil, fmt.Errorf("testenv: request frame of %d bytes: %w", n, errBadFrame)
	}
	frame := make([]byte, 4+int(n))
	copy(frame, size[:])
	if _, err := io.ReadFull(r, frame[4:]); err != nil {
		return nil, err
	}
	return frame, nil
}
