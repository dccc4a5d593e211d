package store

import (
	"context"
	"fmt"
	"time"

	"github.com/stokehq/stoke/internal/cost"
)

// Usage sums the records of function ("" for every function) started at or
// after since, per function, for `stoke cost`: SQLite adds them up, so a
// window of 100,000 records costs one scan, not 100,000 Go values. Init
// times are rounded up to granularity here (as record.Billed does) because
// the records keep the raw init time.
func (s *Store) Usage(ctx context.Context, function string, since time.Time, granularity time.Duration) ([]cost.Usage, error) {
	if granularity <= 0 {
		granularity = time.Millisecond
	}
	g := float64(granularity) / float64(time.Millisecond)
	where, args := "start_ns >= ?2", []any{g, since.UnixNano()}
	if function != "" {
		where += " AND function = ?3"
		args = append(args, function)
	}
	// ?1 is the granularity in ms. SQLite has no ceil() in every build, so
	// ceil(x) is CAST(x AS INTEGER) + (x > CAST(x AS INTEGER)) for x ≥ 0:
	// init in whole granularity units, then in whole ms.
	q := `WITH r AS (SELECT *,
			(CAST(init_ms / ?1 AS INTEGER) + (init_ms / ?1 > CAST(init_ms / ?1 AS INTEGER))) * ?1 AS init_g
		FROM records WHERE ` + where + `)
	SELECT function, COUNT(*), TOTAL(instance_id != ''), TOTAL(cold AND instance_id != ''),
		TOTAL(error_type = '` + cost.ThrottledErrorType + `'),
		TOTAL(CASE WHEN instance_id != '' THEN billed_ms * memory_mb END),
		TOTAL(CASE WHEN cold AND instance_id != '' AND init_ms > 0
			THEN (CAST(init_g AS INTEGER) + (init_g > CAST(init_g AS INTEGER))) * memory_mb END)
	FROM r GROUP BY function ORDER BY function`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: summing usage: %w", err)
	}
	defer rows.Close()
	var out []cost.Usage
	byFn := map[string]int{}
	for rows.Next() {
		var u cost.Usage
		var billable, cold, throttles float64
		if err := rows.Scan(&u.Function, &u.Invocations, &billable, &cold, &throttles, &u.BilledMBMS, &u.InitMBMS); err != nil {
			return nil, fmt.Errorf("store: reading usage: %w", err)
		}
		u.Billable, u.ColdStarts, u.Throttles = int64(billable), int64(cold), int64(throttles)
		byFn[u.Function] = len(out)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: summing usage: %w", err)
	}
	rows.Close()

	// Nearest-rank percentiles of billable durations in one sorted pass: a
	// value's rank among its function's is row_number(); the p-th
	// percentile is the smallest value whose rank is ≥ ceil(p·n/100).
	q = `WITH r AS (SELECT function, duration_ms AS d,
			ROW_NUMBER() OVER (PARTITION BY function ORDER BY duration_ms) AS k,
			COUNT(*) OVER (PARTITION BY function) AS n
		FROM records WHERE instance_id != '' AND ` + where + `)
	SELECT function, MIN(CASE WHEN k >= (n*50+99)/100 THEN d END),
		MIN(CASE WHEN k >= (n*95+99)/100 THEN d END), MIN(CASE WHEN k >= (n*99+99)/100 THEN d END)
	FROM r GROUP BY function`
	rows, err = s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: duration percentiles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var fn string
		var p50, p95, p99 float64
		if err := rows.Scan(&fn, &p50, &p95, &p99); err != nil {
			return nil, fmt.Errorf("store: reading duration percentiles: %w", err)
		}
		if i, ok := byFn[fn]; ok {
			out[i].DurationP50, out[i].DurationP95, out[i].DurationP99 = p50, p95, p99
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: duration percentiles: %w", err)
	}
	return out, nil
}

// Arrivals returns when function's invocations since `since` arrived, how
// long they ran and whether they were cold, oldest first: the input of the
// keep-warm simulation. Only requests that reached an instance are
// included; records are bounded per function (Options.MaxRecords), so this
// is too.
func (s *Store) Arrivals(ctx context.Context, function string, since time.Time) ([]cost.Arrival, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT start_ns, duration_ms, init_ms, cold FROM records
		WHERE function = ? AND start_ns >= ? AND instance_id != '' ORDER BY start_ns`, function, since.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: reading arrivals of %s: %w", function, err)
	}
	defer rows.Close()
	var out []cost.Arrival
	for rows.Next() {
		var a cost.Arrival
		var ns int64
		if err := rows.Scan(&ns, &a.DurationMS, &a.InitMS, &a.Cold); err != nil {
			return nil, fmt.Errorf("store: reading arrivals of %s: %w", function, err)
		}
		a.Start = time.Unix(0, ns)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading arrivals of %s: %w", function, err)
	}
	return out, nil
}
