package jobflags

import (
	"flag"
	"strings"
)

// Runners the pipelines support.
const (
	Prism    = "prism"
	Direct   = "direct"
	Dataflow = "dataflow"
)

// Runner is the runner Beam's --runner flag selects: prism when it is empty,
// as beamx.Run does.
func Runner() string {
	f := flag.Lookup("runner")
	if f == nil || f.Value.String() == "" {
		return Prism
	}
	return strings.ToLower(f.Value.String())
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
