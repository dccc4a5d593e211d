package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stokehq/stoke/internal/cache"
)

var (
	cacheRequestsDesc = prometheus.NewDesc("stoke_cache_requests_total",
		"Requests to functions with a response cache, by what the cache did: hit, stale, collapsed (answered without an invocation of their own), revalidated, miss, bypass, error.",
		[]string{"function", "result"}, nil)
	cacheBytesDesc = prometheus.NewDesc("stoke_cache_bytes",
		"Memory held by a function's response cache (bodies, fields and bookkeeping).", []string{"function"}, nil)
	cacheMaxBytesDesc = prometheus.NewDesc("stoke_cache_max_bytes",
		"A function's cache budget (cache.max_bytes).", []string{"function"}, nil)
	cacheEntriesDesc = prometheus.NewDesc("stoke_cache_entries",
		"Responses stored in a function's cache.", []string{"function"}, nil)
	cacheEvictionsDesc = prometheus.NewDesc("stoke_cache_evictions_total",
		"Entries evicted to stay within cache.max_bytes.", []string{"function"}, nil)
	cacheRefreshesDesc = prometheus.NewDesc("stoke_cache_refreshes_total",
		"Background refreshes the cache started (stale-while-revalidate, stale_if_cold); each is an invocation.", []string{"function"}, nil)
)

// cacheCollector reports the caches' own counters on every scrape: the
// caches count for stoke ls anyway, so the request path pays once.
type cacheCollector func() map[string]cache.Stats

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheRequestsDesc, cacheBytesDesc, cacheMaxBytesDesc, cacheEntriesDesc, cacheEvictionsDesc, cacheRefreshesDesc} {
		ch <- d
	}
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	for fn, s := range c() {
		for _, r := range cache.Results {
			ch <- prometheus.MustNewConstMetric(cacheRequestsDesc, prometheus.CounterValue, float64(s.Requests[r]), fn, string(r))
		}
		ch <- prometheus.MustNewConstMetric(cacheBytesDesc, prometheus.GaugeValue, float64(s.Bytes), fn)
		ch <- prometheus.MustNewConstMetric(cacheMaxBytesDesc, prometheus.GaugeValue, float64(s.MaxBytes), fn)
		ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(s.Entries), fn)
		ch <- prometheus.MustNewConstMetric(cacheEvictionsDesc, prometheus.CounterValue, float64(s.Evictions), fn)
		ch <- prometheus.MustNewConstMetric(cacheRefreshesDesc, prometheus.CounterValue, float64(s.Refreshes), fn)
	}
}
