// Command generate writes the generated files of every flex template (see
// package gen): its Dockerfile, from one pattern, and the parameter table of
// its README.md, from its metadata.json. Run it from the templates folder, as
// `go generate ./templates` does:
//
//	go run ./internal/generate          # rewrite the files that are out of date
//	go run ./internal/generate -check   # list them and exit 1, writing nothing
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/mqttbeam/mqttbeam/templates/internal/gen"
)

func main() {
	check := flag.Bool("check", false, "list the files that are out of date and exit 1, without writing")
	dir := flag.String("dir", ".", "the templates folder: one folder per template, each with metadata.json and README.md")
	flag.Parse()
	stale, err := gen.Sync(*dir, !*check)
	if err != nil {
		fmt.Fprintf(os.Stderr, "generate: %v\n", err)
		os.Exit(1)
	}
	for _, path := range stale {
		if *check {
			fmt.Printf("out of date: %s (run go generate ./templates)\n", path)
		} else {
			fmt.Printf("updated %s\n", path)
		}
	}
	if *check && len(stale) > 0 {
		os.Exit(1)
	}
}
