package jsonl_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/mqttbeam/mqttbeam/transforms/jsonl"
)

type reading struct {
	Device      string  `json:"device"`
	Temperature float64 `json:"temperature"`
}

// Write appends one JSON line per element to a local file.
func ExampleWrite() {
	dir, err := os.MkdirTemp("", "jsonl")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "readings.jsonl")

	p, s := beam.NewPipelineWithRoot()
	jsonl.Write(s, path, beam.Create(s, reading{"pump-1", 21.5}))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(b))
	// Output:
	// {"device":"pump-1","temperature":21.5}
}

// ReadFile reads a local run's output back, one value per line.
func ExampleReadFile() {
	dir, err := os.MkdirTemp("", "jsonl")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "readings.jsonl")

	p, s := beam.NewPipelineWithRoot()
	jsonl.Write(s, path, beam.Create(s, reading{"pump-1", 21.5}, reading{"pump-2", 19}))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
	rows, err := jsonl.ReadFile[reading](path)
	if err != nil {
		log.Fatal(err)
	}
	var sum float64
	for _, r := range rows {
		sum += r.Temperature
	}
	fmt.Println(len(rows), "readings, sum", sum)
	// Output:
	// 2 readings, sum 40.5
}
