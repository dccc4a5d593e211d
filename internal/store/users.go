package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// usersSchema: the uid each function runs as when its config names no
// user, allocated once so a restart (or a new version) keeps it, and so the
// files it wrote stay its own.
const usersSchema = `
CREATE TABLE function_users (
	function TEXT    PRIMARY KEY,
	uid      INTEGER NOT NULL UNIQUE
);
`

// FunctionUID returns the uid allocated to function, allocating the lowest
// free one in [lo, hi] the first time (or when the stored one is outside
// the range, which changed). taken reports uids in use otherwise (by a user
// of the host, or a function's explicit user); nil means none.
func (s *Store) FunctionUID(ctx context.Context, function string, lo, hi int, taken func(uid int) bool) (int, error) {
	if lo <= 0 || hi < lo {
		return 0, fmt.Errorf("store: uid range %d-%d", lo, hi)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: allocating a uid for %s: %w", function, err)
	}
	defer tx.Rollback()
	var uid int
	err = tx.QueryRowContext(ctx, `SELECT uid FROM function_users WHERE function = ?`, function).Scan(&uid)
	switch {
	case err == nil && uid >= lo && uid <= hi:
		return uid, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("store: reading the uid of %s: %w", function, err)
	}
	used := map[int]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT uid FROM function_users WHERE uid BETWEEN ? AND ? AND function != ?`, lo, hi, function)
	if err != nil {
		return 0, fmt.Errorf("store: allocating a uid for %s: %w", function, err)
	}
	for rows.Next() {
		var u int
		if err := rows.Scan(&u); err != nil {
			rows.Close()
			return 0, err
		}
		used[u] = true
	}
	rows.Close()
	uid = 0
	for u := lo; u <= hi; u++ {
		if !used[u] && (taken == nil || !taken(u)) {
			uid = u
			break
		}
	}
	if uid == 0 {
		return 0, fmt.Errorf("store: no free uid in %d-%d for function %s (sandbox.uids)", lo, hi, function)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO function_users (function, uid) VALUES (?, ?)
		ON CONFLICT (function) DO UPDATE SET uid = excluded.uid`, function, uid); err != nil {
		return 0, fmt.Errorf("store: saving the uid of %s: %w", function, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: saving the uid of %s: %w", function, err)
	}
	return uid, nil
}
