// Package templates holds the Dataflow flex templates of the pipelines, one
// folder per pipeline (telemetry, bridge, commands): metadata.json (the
// parameters, in Google's format), params.example (parameters to start
// from), the Dockerfile of the launcher image and a README, the last two
// partly generated (see internal/gen). It has no Go API; its tests check
// every template against its pipeline's binary, and the scripts that build
// and launch the templates.
//
// Build and launch a template with scripts/build-template.sh and
// scripts/run-template.sh; see templates/telemetry/README.md.
package templates

//go:generate go run ./internal/generate
