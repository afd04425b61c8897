package gen_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/mqttbeam/mqttbeam/templates/internal/gen"
)

// The lines of a template's Dockerfile that name its pipeline.
func ExampleDockerfile() {
	df, err := gen.Dockerfile("telemetry")
	if err != nil {
		log.Fatal(err)
	}
	for line := range strings.Lines(string(df)) {
		if strings.HasPrefix(line, "FROM") || strings.HasPrefix(line, "ENV") || strings.Contains(line, "go build") {
			fmt.Print(line)
		}
	}
	// Output:
	// FROM golang:1.26.8-bookworm AS builder
	// RUN CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -o /template/telemetry ./pipelines/telemetry
	// FROM --platform=linux/amd64 gcr.io/dataflow-templates-base/go-template-launcher-base:20260122_RC00
	// ENV FLEX_TEMPLATE_GO_BINARY=/template/telemetry
}
