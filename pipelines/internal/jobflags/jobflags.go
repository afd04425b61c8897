// Package jobflags defines the command-line flags the pipelines share (the
// MQTT connection, BigQuery tables, the runner) with Beam's and Google's
// template naming, and validates them before a pipeline is built: a bad value
// fails at once with an error that names the flag and what is allowed.
package jobflags

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/resname"
)

// List is a flag that takes comma-separated values and may be repeated.
type List []string

// String implements flag.Value.
func (l *List) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

// Set implements flag.Value: the first Set replaces the default, later ones
// append.
func (l *List) Set(v string) error {
	var vals []string
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			vals = append(vals, p)
		}
	}
	*l = append(*l, vals...)
	return nil
}

// listFlag registers a List whose default is replaced by the first value given.
type listFlag struct {
	l   *List
	set bool
}

func (f *listFlag) String() string { return f.l.String() }

func (f *listFlag) Set(v string) error {
	if !f.set {
		*f.l, f.set = nil, true
	}
	return f.l.Set(v)
}

// ListVar defines a comma-separated, repeatable flag with a default.
func ListVar(fs *flag.FlagSet, l *List, name string, def []string, usage string) {
	*l = append(List(nil), def...)
	fs.Var(&listFlag{l: l}, name, usage)
}

// Usage markers: a flag whose usage ends with one of these must be given
// (on Dataflow), so a template lists it as a non-optional parameter.
const (
	Required           = " (required)"
	RequiredOnDataflow = " (required on Dataflow)"
)

// Errorf makes an error about a flag: "--name: ...".
func Errorf(name, format string, args ...any) error {
	return fmt.Errorf("--%s: "+format, append([]any{name}, args...)...)
}

// Table checks a PROJECT:DATASET.TABLE flag value; empty is allowed.
func Table(name, v string) error {
	if v == "" || resname.TableRE.MatchString(v) {
		return nil
	}
	return Errorf(name, "%q is not a BigQuery table as PROJECT:DATASET.TABLE (e.g. my-project:telemetry.aggregates)", v)
}

// NonNegative checks a duration flag.
func NonNegative(name string, d time.Duration) error {
	if d < 0 {
		return Errorf(name, "%v is negative", d)
	}
	return nil
}

// Positive checks a duration flag that must be set.
func Positive(name string, d time.Duration) error {
	if d <= 0 {
		return Errorf(name, "%v is not a positive duration (e.g. 1m, 30s)", d)
	}
	return nil
}

// OneOf checks a flag whose value is one of allowed.
func OneOf(name, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return Errorf(name, "%q is not one of %s", v, strings.Join(allowed, ", "))
}

// Join joins the validation errors of several flags.
func Join(errs ...error) error {
	return errors.Join(errs...)
}
