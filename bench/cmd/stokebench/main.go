// Command stokebench measures Stoke's core against baselines measured in the
// same run, interleaved. It builds bin/stoke, examples/hello and
// bench/cmd/plainproxy, runs `stoke serve` as a subprocess with a generated
// config on free loopback ports, and stops every process it started.
//
//	go run ./bench/cmd/stokebench cold    # cold start vs starting the app directly (-main-bin: and main's Stoke)
//	go run ./bench/cmd/stokebench warm    # warm latency (c=1) and throughput (wrk -c64)
//	go run ./bench/cmd/stokebench -floors warm  # and the floors under any proxy: a raw TCP relay, a minimal HTTP forwarder (and for Lambda's model, one in front of 50 apps)
//	go run ./bench/cmd/stokebench burst   # 200 concurrent requests on a cold function
//	go run ./bench/cmd/stokebench rss     # Stoke's RSS with 100 idle functions
//	go run ./bench/cmd/stokebench all     # (or -all) every one of the above
//
// and, for Lambda functions (not part of all; `lambda` runs both):
//
//	go run ./bench/cmd/stokebench lambda-warm  # Invoke API / route / http function / direct, c=1 and c=32
//	go run ./bench/cmd/stokebench -lambda-ab [-main-bin /tmp/stoke-main] lambda-warm  # the Lambda warm target only: this build, main's, RIE (aws-sdk-go-v2, c=1, random order)
//	go run ./bench/cmd/stokebench [-main-bin /tmp/stoke-main] lambda-cold  # cold Invoke vs the bootstrap's own start
//
// and, for examples/django-drf on the python-wsgi runtime (not part of all):
//
//	go run ./bench/cmd/stokebench [-main-bin /tmp/stoke-main] django  # the seed's table: plain start vs fork snapshot vs + init boost; cold minus warm (-main-bin: and main's)
//
// and, for the response cache (not part of all):
//
//	go run ./bench/cmd/stokebench cache   # a hit vs the warm path vs a tuned proxy hop; stale-while-cold vs a hit
//
// and, for density (not part of all):
//
//	go run ./bench/cmd/stokebench density # idle warm Django instances at 128 MB up to 1,000: memory, Stoke's RSS, cold starts
//
// and, for cluster mode (not part of all):
//
//	go run ./bench/cmd/stokebench [-main-bin /tmp/stoke-main] [-cluster-base-bin /tmp/stoke-main] cluster  # warm via another node vs local; cold on a cluster node vs one node; -cluster-base-bin: main's cluster beside this build's
//
// docs/BENCHMARKS.md has the results and how to read them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

var (
	flagN        = flag.Int("n", 100, "cold: starts per variant")
	flagRounds   = flag.Int("rounds", 5, "warm: c=1 rounds per target")
	flagReqs     = flag.Int("reqs", 5000, "warm: requests per c=1 round")
	flagWrk      = flag.Int("wrk-rounds", 3, "warm: wrk rounds per target")
	flagWrkDur   = flag.String("wrk-d", "10s", "warm: wrk duration per round")
	flagFloors   = flag.Bool("floors", false, "warm: also two floors in front of the same app, interleaved: a raw TCP relay and a minimal HTTP forwarder (bench/cmd/floorproxy), each against the tuned proxy; and beside the Lambda-model row, the forwarder in front of 50 copies of the app taking one request each (floorproxy -mode pool), in the root cgroup or a cpu cgroup each, under SCHED_OTHER or SCHED_BATCH")
	flagWarmAB   = flag.Bool("warm-ab", false, "warm: only direct, plainproxy, stoke and (with -main-bin) main's binary: an A/B of a change to the warm path")
	flagLambdaAB = flag.Bool("lambda-ab", false, "lambda-warm: only the target's rows at c=1, aws-sdk-go-v2 against this build, RIE and (with -main-bin) main's binary, a random order every round: an A/B of a change to the warm Lambda path")
	flagBurst    = flag.Int("burst-rounds", 3, "burst: rounds per memory size")
	flagQueue    = flag.Int("queue-size", 1000, "burst: gateway.queue_size (Stoke's default is 100)")
	flagAll      = flag.Bool("all", false, "run every benchmark")

	flagLRounds        = flag.Int("lambda-rounds", 5, "lambda-warm: c=1 rounds per target")
	flagLReqs          = flag.Int("lambda-reqs", 2000, "lambda-warm: requests per c=1 round")
	flagL32Rounds      = flag.Int("lambda-c32-rounds", 3, "lambda-warm: c=32 rounds per target")
	flagLDur           = flag.String("lambda-d", "5s", "lambda-warm: duration of a c=32 round")
	flagDjangoN        = flag.Int("django-n", 20, "django: cold-start rounds (snapshot modes)")
	flagDjangoPlainN   = flag.Int("django-plain-n", 3, "django: cold-start rounds of the plain start (17 s each at 128 MB)")
	flagDjangoProjects = flag.String("django-projects", "example,shop", "django: the projects, comma-separated: example (examples/django-drf), shop (bench/testdata/djangoshop, one Stoke was not tuned for)")
	flagRIE            = flag.String("rie", "", "lambda-warm: an aws-lambda-rie binary for the same-run RIE rows (default: built from its Go module)")
)

var benches = []struct {
	name string
	run  func(context.Context, *env) error
}{
	{"cold", benchCold},
	{"warm", benchWarm},
	{"burst", benchBurst},
	{"rss", benchRSS},
	{"lambda-warm", benchLambdaWarm},
	{"lambda-cold", benchLambdaCold},
	{"django", benchDjango},
	{"cache", benchCache},
	{"density", benchDensity},
	{"cluster", benchCluster},
}

// notInAll are not part of all (docs/BENCHMARKS.md says why for each);
// lambdaBenches are what `lambda` runs.
var (
	notInAll      = map[string]bool{"lambda-warm": true, "lambda-cold": true, "django": true, "cache": true, "density": true, "cluster": true}
	lambdaBenches = map[string]bool{"lambda-warm": true, "lambda-cold": true}
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/cmd/stokebench [flags] cold|warm|burst|rss|all|lambda-warm|lambda-cold|lambda|django|cache|density|cluster ...")
		flag.PrintDefaults()
	}
	flag.Parse()
	want := map[string]bool{}
	for _, a := range flag.Args() {
		want[a] = true
	}
	if *flagAll || want["all"] {
		for _, b := range benches {
			if !notInAll[b.name] {
				want[b.name] = true
			}
		}
	}
	if want["lambda"] {
		delete(want, "lambda")
		for b := range lambdaBenches {
			want[b] = true
		}
	}
	if len(want) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := newEnv(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stokebench:", err)
		os.Exit(1)
	}
	host, _ := os.Hostname()
	fmt.Printf("stokebench on %s, %d CPUs, %s\n", host, numCPU(), time.Now().UTC().Format(time.RFC1123))
	failed := false
	for _, b := range benches {
		if !want[b.name] {
			continue
		}
		delete(want, b.name)
		limit := 5 * time.Minute
		switch b.name {
		case "django":
			limit = 30 * time.Minute // plain starts under 128 MB's CPU share take ~17 s each
		case "density":
			limit = 90 * time.Minute // thousands of instances started, step by step
		case "warm":
			if *flagFloors {
				limit = 20 * time.Minute // two more targets in every round, four pool floors in every c=64 round
			}
		}
		bctx, cancel := context.WithTimeout(ctx, limit)
		start := time.Now()
		fmt.Printf("\n== %s\n", b.name)
		if err := b.run(bctx, e); err != nil {
			fmt.Fprintf(os.Stderr, "stokebench %s: %v\n", b.name, err)
			failed = true
		}
		cancel()
		fmt.Printf("(%s took %v)\n", b.name, time.Since(start).Round(time.Second))
		if ctx.Err() != nil {
			break
		}
	}
	delete(want, "all")
	for w := range want {
		fmt.Fprintf(os.Stderr, "stokebench: unknown benchmark %q\n", w)
		failed = true
	}
	e.close()
	if failed || len(e.leaks) > 0 {
		os.Exit(1)
	}
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	n := 0
	for i := 0; i+9 < len(b); i++ {
		if string(b[i:i+9]) == "processor" && (i == 0 || b[i-1] == '\n') {
			n++
		}
	}
	return n
}
