package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// seqShift splits a line's Seq into its chunk id and its index in the chunk.
const seqShift = 20

// A chunk's data is its lines, oldest first, in one of two encodings told
// apart by the first byte:
//
//   - chunkBinary, then per line: the time (Unix ns) as a varint, then the
//     stream, the instance and the text, each as a uvarint length and its
//     bytes. Written since the JSON cost the writer a tenth of its CPU
//     (BenchmarkWriteRequests): reflection and escaping every byte of text.
//   - '[': a JSON array of chunkLine, as written before; still read.
const chunkBinary = 1

// chunkLine is a log line as stored inside a JSON chunk.
type chunkLine struct {
	T int64  `json:"t"`
	S string `json:"s"`
	I string `json:"i,omitempty"`
	X string `json:"x"`
}

// chunkLogs groups a batch's lines by function, keeping their order.
func chunkLogs(lines []LogLine) map[string][]*LogLine {
	out := map[string][]*LogLine{}
	for i := range lines {
		l := &lines[i]
		out[l.Function] = append(out[l.Function], l)
	}
	return out
}

// appendChunk appends lines, encoded as a chunk's data, to b.
func appendChunk(b []byte, lines []*LogLine) ([]byte, error) {
	if len(lines) >= 1<<seqShift {
		return b, fmt.Errorf("%d lines in one chunk", len(lines))
	}
	b = append(b, chunkBinary)
	for _, l := range lines {
		b = binary.AppendVarint(b, l.Time.UnixNano())
		for _, s := range [...]string{l.Stream, l.Instance, l.Text} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b, nil
}

var errChunkData = errors.New("truncated or malformed chunk data")

func decodeChunk(id int64, fn string, data []byte) ([]LogLine, error) {
	if len(data) == 0 || data[0] != chunkBinary {
		return decodeJSONChunk(id, fn, data)
	}
	// One string for the chunk: its lines' fields are slices of it, parsed
	// from data at the same offsets.
	all := string(data)
	var out []LogLine
	for p := 1; p < len(data); {
		t, n := binary.Varint(data[p:])
		if n <= 0 {
			return nil, errChunkData
		}
		p += n
		var f [3]string
		for i := range f {
			l, n := binary.Uvarint(data[p:])
			if n <= 0 || l > uint64(len(data)-p-n) {
				return nil, errChunkData
			}
			p += n
			f[i] = all[p : p+int(l)]
			p += int(l)
		}
		if len(out) >= 1<<seqShift {
			return nil, errChunkData
		}
		out = append(out, LogLine{Seq: id<<seqShift | int64(len(out)), Function: fn, Time: time.Unix(0, t),
			Stream: f[0], Instance: f[1], Text: f[2]})
	}
	return out, nil
}

func decodeJSONChunk(id int64, fn string, data []byte) ([]LogLine, error) {
	var cl []chunkLine
	if err := json.Unmarshal(data, &cl); err != nil {
		return nil, err
	}
	out := make([]LogLine, len(cl))
	for i, c := range cl {
		out[i] = LogLine{Seq: id<<seqShift | int64(i), Function: fn, Time: time.Unix(0, c.T), Stream: c.S, Instance: c.I, Text: c.X}
	}
	return out, nil
}
