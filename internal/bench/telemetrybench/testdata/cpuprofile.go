// This file is not part of telemetrybench: scripts/bench-telemetry.sh -p
// adds it to the telemetry job's main package at build time (go build
// -overlay), so that the job writes a CPU profile without any change to
// pipelines/telemetry.
//
// TELEMETRYBENCH_CPUPROFILE is the profile's path; the profile covers
// TELEMETRYBENCH_CPUPROFILE_SECONDS (default 60) from the process's start,
// which should end before the job does. At that moment the job also writes
// a heap profile to the same path with the suffix .heap (what holds the
// memory at the end of the read).

package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"
)

func init() {
	path := os.Getenv("TELEMETRYBENCH_CPUPROFILE")
	if path == "" {
		return
	}
	seconds := 60
	if s := os.Getenv("TELEMETRYBENCH_CPUPROFILE_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "TELEMETRYBENCH_CPUPROFILE_SECONDS: %q is not a positive number\n", s)
			os.Exit(2)
		}
		seconds = n
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "TELEMETRYBENCH_CPUPROFILE: %v\n", err)
		os.Exit(2)
	}
	time.AfterFunc(time.Duration(seconds)*time.Second, func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "TELEMETRYBENCH_CPUPROFILE: %v\n", err)
		}
		h, err := os.Create(path + ".heap")
		if err == nil {
			runtime.GC()
			err = errors.Join(pprof.WriteHeapProfile(h), h.Close())
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "TELEMETRYBENCH_CPUPROFILE: heap profile: %v\n", err)
		}
		fmt.Fprintf(os.Stderr, "telemetrybench: CPU profile of the first %ds written to %s, heap profile to %s.heap\n", seconds, path, path)
	})
}
