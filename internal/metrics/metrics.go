// Package metrics exports Stoke's Prometheus metrics: every invocation
// record is counted and timed as it passes the server, and instance counts
// are read from the pools when Prometheus scrapes.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/stokehq/stoke/internal/cache"
	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/record"
)

// FunctionInstances is one function's instance count per state ("starting",
// "idle", "busy", "draining", …), as the pools report them.
type FunctionInstances struct {
	Function string
	ByState  map[string]int
	// Failing: its instances cannot start; StartFailures: how many starts
	// failed in a row.
	Failing       bool
	StartFailures int
}

// Options are the sources the metrics read at scrape time.
type Options struct {
	Prices cost.Prices // prices the cost counters
	// Instances lists instance counts; called on every scrape.
	Instances func() []FunctionInstances
	// Dropped counts records and log lines the store dropped because its
	// writer fell behind; called on every scrape. Optional.
	Dropped func() int64
	// StoreLost counts records and log lines lost because writing them
	// failed (disk full, read-only); StoreWritable says whether writes
	// succeed now. Called on every scrape; optional.
	StoreLost     func() int64
	StoreWritable func() bool
	// Now is the clock keep-warm cost accrues by; default time.Now.
	Now func() time.Time
	// Caches reads the response caches' counters by function; called on
	// every scrape. Optional.
	Caches func() map[string]cache.Stats
}

// Metrics is Stoke's registry and the instruments Observe feeds.
type Metrics struct {
	reg    *prometheus.Registry
	prices cost.Prices

	invocations *prometheus.CounterVec
	coldStarts  *prometheus.CounterVec
	throttles   *prometheus.CounterVec
	billedGBs   *prometheus.CounterVec
	costs       *prometheus.CounterVec
	initDur     *prometheus.HistogramVec
	duration    *prometheus.HistogramVec
	queueWait   *prometheus.HistogramVec

	// fns maps a function to its label-resolved instruments. Read on every
	// record without a lock; replaced (copy on write) when a function is
	// first seen, which is rare.
	fns   atomic.Pointer[map[string]*fnMetrics]
	fnsMu sync.Mutex

	// warm is each function's keep_warm setting and when its cost was last
	// added to stoke_cost_dollars_total{kind="keep_warm"}.
	warmMu sync.Mutex
	warm   map[string]*keptWarm
	now    func() time.Time
}

type keptWarm struct {
	n, memoryMB int
	since       time.Time
}

// fnMetrics are one function's instruments with their labels resolved, so
// observing a record is a map lookup and a few atomic adds.
type fnMetrics struct {
	m                                *Metrics
	name                             string
	coldStarts, throttles, billedGBs prometheus.Counter
	costRequest, costDuration        prometheus.Counter
	costInit                         prometheus.Counter
	initDur, duration, queueWait     prometheus.Observer
	// byStatus[cold] maps a status to stoke_invocations_total's child,
	// copy on write like Metrics.fns: statuses seen are few and stable.
	byStatus [2]atomic.Pointer[map[int]prometheus.Counter]
	mu       sync.Mutex
}

// Buckets in seconds. Durations span a 1 ms hello to a 15 min batch job;
// inits a forked 5 ms start to Django's 30 s; queue waits are mostly 0.
var (
	durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900}
	initBuckets     = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60}
	queueBuckets    = []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 10, 30}
)

// New makes the metrics and their own registry (not the global one, so
// two servers in one process, as in tests, do not collide).
func New(o Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), prices: o.Prices, warm: map[string]*keptWarm{}, now: o.Now}
	if m.now == nil {
		m.now = time.Now
	}
	fn := []string{"function"}
	m.invocations = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoke_invocations_total",
		Help: "Requests to functions, by cold (waited for an init) and HTTP status; throttled ones (429) included."},
		[]string{"function", "cold", "status"})
	m.coldStarts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoke_cold_starts_total",
		Help: "Requests that waited for an instance to start."}, fn)
	m.throttles = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoke_throttles_total",
		Help: "Requests refused with 429: max_instances busy and the queue full."}, fn)
	m.billedGBs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoke_billed_gb_seconds_total",
		Help: "Billed GB-seconds: duration rounded up to billing.granularity × memory, plus init when billing.bill_init."}, fn)
	m.costs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoke_cost_dollars_total",
		Help: "What the invocations would cost on Lambda at the billing prices, by kind (request, duration, init), and keeping keep_warm instances initialised (keep_warm, at the provisioned-concurrency price)."},
		[]string{"function", "kind"})
	m.initDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "stoke_init_duration_seconds",
		Help: "Init time of cold starts: instance start to ready.", Buckets: initBuckets}, fn)
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "stoke_invocation_duration_seconds",
		Help: "Time the function took per invocation (not billed rounding, not queue or init).", Buckets: durationBuckets}, fn)
	m.queueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "stoke_queue_wait_seconds",
		Help: "Time a request waited for an instance (includes the init on a cold start).", Buckets: queueBuckets}, fn)
	m.reg.MustRegister(m.invocations, m.coldStarts, m.throttles, m.billedGBs, m.costs, m.initDur, m.duration, m.queueWait,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if o.Instances != nil {
		m.reg.MustRegister(instancesCollector(o.Instances))
	}
	if o.Caches != nil {
		m.reg.MustRegister(cacheCollector(o.Caches))
	}
	if o.StoreLost != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "stoke_store_lost_total",
			Help: "Records and log lines lost because writing them to data_dir failed (disk full, read-only, corrupt)."},
			func() float64 { return float64(o.StoreLost()) }))
	}
	if o.StoreWritable != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "stoke_store_writable",
			Help: "1 while writes to data_dir succeed, 0 while they fail."},
			func() float64 {
				if o.StoreWritable() {
					return 1
				}
				return 0
			}))
	}
	if o.Dropped != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "stoke_store_dropped_total",
			Help: "Records and log lines not stored because the writer fell behind."},
			func() float64 { return float64(o.Dropped()) }))
	}
	empty := map[string]*fnMetrics{}
	m.fns.Store(&empty)
	return m
}

// Registry is the registry the metrics are in, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus' exposition formats; each
// scrape first adds the keep-warm cost accrued since the last.
func (m *Metrics) Handler() http.Handler {
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		m.accrueKeepWarm()
		return m.reg.Gather()
	})
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{Registry: m.reg})
}

// SetKeepWarm records that function now keeps n instances of memoryMB
// initialised (0 when it is removed): the cost of the previous setting up
// to now is added first, so a deploy that changes keep_warm is priced
// exactly.
func (m *Metrics) SetKeepWarm(function string, n, memoryMB int) {
	m.warmMu.Lock()
	defer m.warmMu.Unlock()
	now := m.now()
	m.accrueLocked(now)
	if n <= 0 {
		delete(m.warm, function)
		return
	}
	m.warm[function] = &keptWarm{n: n, memoryMB: memoryMB, since: now}
}

func (m *Metrics) accrueKeepWarm() {
	m.warmMu.Lock()
	defer m.warmMu.Unlock()
	m.accrueLocked(m.now())
}

func (m *Metrics) accrueLocked(now time.Time) {
	for fn, w := range m.warm {
		if d := now.Sub(w.since); d > 0 {
			m.costs.WithLabelValues(fn, "keep_warm").Add(m.prices.KeepWarm(w.n, w.memoryMB, d))
			w.since = now
		}
	}
}

// Observe counts and times one invocation record. It is on every request's
// path: after the first record of a function with a given status, it does
// not allocate or lock.
func (m *Metrics) Observe(r *record.Record) {
	f := m.function(r.Function)
	f.invocation(r.Cold, r.Status).Inc()
	if r.ErrorType == cost.ThrottledErrorType {
		f.throttles.Inc()
		return
	}
	f.queueWait.Observe(r.QueueMS / 1000)
	if !cost.Billable(r) {
		return // never reached an instance: no duration, nothing billed
	}
	if r.Cold {
		f.coldStarts.Inc()
		f.initDur.Observe(r.InitMS / 1000)
	}
	f.duration.Observe(r.DurationMS / 1000)
	c := m.prices.Invocation(r)
	f.billedGBs.Add(c.GBSeconds)
	f.costRequest.Add(c.Request)
	f.costDuration.Add(c.Duration)
	f.costInit.Add(c.Init)
}

func (m *Metrics) function(name string) *fnMetrics {
	if f := (*m.fns.Load())[name]; f != nil {
		return f
	}
	m.fnsMu.Lock()
	defer m.fnsMu.Unlock()
	old := *m.fns.Load()
	if f := old[name]; f != nil {
		return f
	}
	f := &fnMetrics{
		m: m, name: name,
		coldStarts:   m.coldStarts.WithLabelValues(name),
		throttles:    m.throttles.WithLabelValues(name),
		billedGBs:    m.billedGBs.WithLabelValues(name),
		costRequest:  m.costs.WithLabelValues(name, "request"),
		costDuration: m.costs.WithLabelValues(name, "duration"),
		costInit:     m.costs.WithLabelValues(name, "init"),
		initDur:      m.initDur.WithLabelValues(name),
		duration:     m.duration.WithLabelValues(name),
		queueWait:    m.queueWait.WithLabelValues(name),
	}
	for i := range f.byStatus {
		empty := map[int]prometheus.Counter{}
		f.byStatus[i].Store(&empty)
	}
	next := make(map[string]*fnMetrics, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = f
	m.fns.Store(&next)
	return f
}

func (f *fnMetrics) invocation(cold bool, status int) prometheus.Counter {
	i := 0
	if cold {
		i = 1
	}
	if c := (*f.byStatus[i].Load())[status]; c != nil {
		return c
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.byStatus[i].Load()
	if c := old[status]; c != nil {
		return c
	}
	c := f.m.invocations.WithLabelValues(f.name, strconv.FormatBool(cold), strconv.Itoa(status))
	next := make(map[int]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[status] = c
	f.byStatus[i].Store(&next)
	return c
}

// instanceStates are always exported per function, 0 when none, so a
// dashboard's series do not appear and vanish with the instances.
var instanceStates = []string{"starting", "idle", "busy", "draining"}

var instancesDesc = prometheus.NewDesc("stoke_instances", "Instances of each function by state, read from the pools at scrape time.",
	[]string{"function", "state"}, nil)

var (
	failingDesc = prometheus.NewDesc("stoke_function_failing",
		"1 while a function's instances cannot start (it answers 502 with the init error and retries with backoff), else 0.",
		[]string{"function"}, nil)
	startFailuresDesc = prometheus.NewDesc("stoke_function_start_failures",
		"Starts of a function's instances that failed in a row (0 once one serves).", []string{"function"}, nil)
)

// instancesCollector reports stoke_instances from list on every scrape:
// the pools already know their instances, so nothing is kept in step.
type instancesCollector func() []FunctionInstances

func (c instancesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- instancesDesc
	ch <- failingDesc
	ch <- startFailuresDesc
}

func (c instancesCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c() {
		failing := 0.0
		if f.Failing {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(failingDesc, prometheus.GaugeValue, failing, f.Function)
		ch <- prometheus.MustNewConstMetric(startFailuresDesc, prometheus.GaugeValue, float64(f.StartFailures), f.Function)
		for _, st := range instanceStates {
			ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(f.ByState[st]), f.Function, st)
		}
		for st, n := range f.ByState {
			if !isStandard(st) {
				ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(n), f.Function, st)
			}
		}
	}
}

func isStandard(state string) bool {
	for _, s := range instanceStates {
		if s == state {
			return true
		}
	}
	return false
}
