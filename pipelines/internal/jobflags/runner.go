package jobflags

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// Runners the pipelines support.
const (
	Prism    = "prism"
	Direct   = "direct"
	Dataflow = "dataflow"
)

// Runner is the runner Beam's --runner flag selects: prism when it is empty,
// as beamx.Run does. Beam's long names (DataflowRunner, PrismRunner,
// DirectRunner), which launchers may pass, count as the short ones.
func Runner() string {
	f := flag.Lookup("runner")
	if f == nil || f.Value.String() == "" {
		return Prism
	}
	return strings.TrimSuffix(strings.ToLower(f.Value.String()), "runner")
}

// IsLocal reports whether runner runs the pipeline in this process.
func IsLocal(runner string) bool {
	return runner == Prism || runner == Direct
}

// ValidateRunner checks the runner: prism, direct or dataflow, and direct only
// for a bounded run (bounded: --max_records or --duration is set), since the
// deprecated direct runner cannot run a streaming pipeline.
func ValidateRunner(runner string, bounded bool) error {
	if err := OneOf("runner", runner, Prism, Direct, Dataflow); err != nil {
		return err
	}
	if runner == Direct && !bounded {
		return Errorf("runner", "the direct runner only runs bounded reads: set --max_records or --duration, "+
			"or run streaming on prism (--runner=prism, the default)")
	}
	return nil
}

// TemplateLauncherEnv is set in a flex template's image (see templates/*/Dockerfile)
// to the pipeline binary's path; Dataflow's template launcher runs that binary.
const TemplateLauncherEnv = "FLEX_TEMPLATE_GO_BINARY"

// ApplyTemplateLauncher prepares a run started by Dataflow's flex template
// launcher: the job goes to Dataflow (--runner=dataflow unless given), the
// job's workers run this very binary (--worker_binary, so
// nothing is compiled in the launcher, which has no Go toolchain) and the
// launcher returns once the job is submitted (--execute_async). Flags the
// user set explicitly are kept. It does nothing outside a template image.
func ApplyTemplateLauncher() error {
	if os.Getenv(TemplateLauncherEnv) == "" {
		return nil
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["runner"] {
		// The launcher submits the job; it must not run it itself.
		if err := flag.Set("runner", Dataflow); err != nil {
			return fmt.Errorf("--runner: %w", err)
		}
	}
	if !set["worker_binary"] {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the binary for --worker_binary: %w", err)
		}
		if err := flag.Set("worker_binary", exe); err != nil {
			return fmt.Errorf("--worker_binary: %w", err)
		}
	}
	if !set["execute_async"] && flag.Lookup("execute_async") != nil {
		if err := flag.Set("execute_async", "true"); err != nil {
			return fmt.Errorf("--execute_async: %w", err)
		}
	}
	return nil
}

// SwitchRunner makes the job run on runner instead of the one --runner
// names (beamx.Run reads the flag), e.g. prism for a job the direct runner
// cannot run.
func SwitchRunner(runner string) error {
	if err := flag.Set("runner", runner); err != nil {
		return fmt.Errorf("--runner: %w", err)
	}
	return nil
}
