package main

// cri-go bench: pass-through load with the kubelet's own gRPC stack, for
// integration/bench-passthrough. One channel dialled as the kubelet dials it, a
// mix of cheap unary CRI calls (Version, ImageStatus of a present image,
// ListContainers: what the kubelet's PLEG and status loops do most), first one
// at a time, then from many concurrent callers on the same channel.
//
//	cri-go bench --endpoint SOCK --dial path|localhost --image REF \
//	    [--sequential N] [--callers C] [--calls-per-caller M] [--warmup W]
//
// Prints one JSON object: latencies in microseconds, throughput in calls/s.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

type benchOptions struct {
	options
	image          string
	sequential     int
	callers        int
	callsPerCaller int
	warmup         int
}

type benchResult struct {
	SequentialCalls  int     `json:"sequential_calls"`
	SequentialP50Us  float64 `json:"sequential_p50_us"`
	SequentialP99Us  float64 `json:"sequential_p99_us"`
	SequentialPerSec float64 `json:"sequential_calls_per_s"`
	ConcurrentCalls  int     `json:"concurrent_calls"`
	Callers          int     `json:"callers"`
	ConcurrentP50Us  float64 `json:"concurrent_p50_us"`
	ConcurrentP99Us  float64 `json:"concurrent_p99_us"`
	ConcurrentPerSec float64 `json:"concurrent_calls_per_s"`
}

func parseBenchOptions(args []string) (benchOptions, error) {
	var o benchOptions
	fs := flag.NewFlagSet("cri-go bench", flag.ContinueOnError)
	fs.StringVar(&o.endpoint, "endpoint", "", "CRI unix socket path")
	fs.StringVar(&o.dial, "dial", "path", "authority: path or localhost")
	fs.StringVar(&o.image, "image", "", "an image present in containerd (ImageStatus target)")
	fs.IntVar(&o.sequential, "sequential", 20000, "calls made one at a time")
	fs.IntVar(&o.callers, "callers", 64, "concurrent callers on one channel")
	fs.IntVar(&o.callsPerCaller, "calls-per-caller", 300, "calls per concurrent caller")
	fs.IntVar(&o.warmup, "warmup", 500, "untimed calls first")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.endpoint == "" || o.image == "" {
		return o, fmt.Errorf("--endpoint and --image are required")
	}
	if o.dial != "path" && o.dial != "localhost" {
		return o, fmt.Errorf("--dial must be path or localhost, not %q", o.dial)
	}
	if o.sequential < 1 || o.callers < 1 || o.callsPerCaller < 1 {
		return o, fmt.Errorf("--sequential, --callers and --calls-per-caller must be positive")
	}
	return o, nil
}

// benchCall makes call number n of the mix; any error fails the bench (a
// pass-through that drops calls must not look fast).
func benchCall(ctx context.Context, rt runtime.RuntimeServiceClient, img runtime.ImageServiceClient, image string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var err error
	switch n % 3 {
	case 0:
		_, err = rt.Version(ctx, &runtime.VersionRequest{Version: "v1"})
	case 1:
		var resp *runtime.ImageStatusResponse
		resp, err = img.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: imageSpec(image)})
		if err == nil && resp.GetImage() == nil {
			err = fmt.Errorf("ImageStatus(%s): image not present", image)
		}
	default:
		_, err = rt.ListContainers(ctx, &runtime.ListContainersRequest{})
	}
	return err
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[int(float64(len(sorted)-1)*p+0.5)]
}

func runBench(o benchOptions) (benchResult, error) {
	conn, err := dial(o.options)
	if err != nil {
		return benchResult{}, err
	}
	defer conn.Close()
	rt := runtime.NewRuntimeServiceClient(conn)
	img := runtime.NewImageServiceClient(conn)
	ctx := context.Background()
	for n := 0; n < o.warmup; n++ {
		if err := benchCall(ctx, rt, img, o.image, n); err != nil {
			return benchResult{}, fmt.Errorf("warm-up call %d: %w", n, err)
		}
	}

	latencies := make([]time.Duration, o.sequential)
	started := time.Now()
	for n := range latencies {
		t := time.Now()
		if err := benchCall(ctx, rt, img, o.image, n); err != nil {
			return benchResult{}, fmt.Errorf("sequential call %d: %w", n, err)
		}
		latencies[n] = time.Since(t)
	}
	sequentialWall := time.Since(started)
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })

	all := make([][]time.Duration, o.callers)
	errs := make([]error, o.callers)
	var wg sync.WaitGroup
	started = time.Now()
	for c := 0; c < o.callers; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			mine := make([]time.Duration, 0, o.callsPerCaller)
			for n := 0; n < o.callsPerCaller; n++ {
				t := time.Now()
				if err := benchCall(ctx, rt, img, o.image, c+n); err != nil {
					errs[c] = fmt.Errorf("caller %d call %d: %w", c, n, err)
					return
				}
				mine = append(mine, time.Since(t))
			}
			all[c] = mine
		}(c)
	}
	wg.Wait()
	concurrentWall := time.Since(started)
	for _, err := range errs {
		if err != nil {
			return benchResult{}, err
		}
	}
	var concurrent []time.Duration
	for _, mine := range all {
		concurrent = append(concurrent, mine...)
	}
	sort.Slice(concurrent, func(i, j int) bool { return concurrent[i] < concurrent[j] })

	return benchResult{
		SequentialCalls:  o.sequential,
		SequentialP50Us:  micros(percentile(latencies, 0.50)),
		SequentialP99Us:  micros(percentile(latencies, 0.99)),
		SequentialPerSec: float64(o.sequential) / sequentialWall.Seconds(),
		ConcurrentCalls:  len(concurrent),
		Callers:          o.callers,
		ConcurrentP50Us:  micros(percentile(concurrent, 0.50)),
		ConcurrentP99Us:  micros(percentile(concurrent, 0.99)),
		ConcurrentPerSec: float64(len(concurrent)) / concurrentWall.Seconds(),
	}, nil
}

func benchMain(args []string) {
	o, err := parseBenchOptions(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cri-go bench: %v\n", err)
		os.Exit(2)
	}
	result, err := runBench(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cri-go bench: %v\n", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(result); err != nil {
		fmt.Fprintf(os.Stderr, "cri-go bench: %v\n", err)
		os.Exit(1)
	}
}
