package record

import "github.com/google/uuid"

func init() {
	// Request ids come from crypto/rand; reading it in blocks keeps a
	// syscall off most requests.
	uuid.EnableRandPool()
}

// NewRequestID returns a new invocation's request id: a UUID (version 7),
// whose leading bits are the time. The store indexes records by request
// id; random ids (version 4) landed on a random page of that index each,
// so every batch of records rewrote a page per row, where time-ordered
// ids append (BenchmarkWriteRecordsIDs in internal/store).
func NewRequestID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// crypto/rand does not fail on Linux ≥ 3.17; a random id still
		// serves, only less cheaply indexed.
		return uuid.NewString()
	}
	return id.String()
}
