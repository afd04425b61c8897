package progress

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/stretchr/testify/assert"
)

var runs atomic.Int64

func uniqueName(prefix string) string {
	return fmt.Sprintf("test_%s_%d", prefix, runs.Add(1))
}

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func TestCountAndFormat(t *testing.T) {
	// Tallies live as long as the process: names of their own keep runs
	// with -count apart.
	in, out, remote := uniqueName("in"), uniqueName("out"), uniqueName("remote")
	p, s := beam.NewPipelineWithRoot()
	Count(s, in, beam.Create(s, 1, 2, 3, 4))
	CountLocal(s, true, out, beam.Create(s, "a"))
	CountLocal(s, false, remote, beam.Create(s, "b", "c"))
	ptest.RunAndValidate(t, p)
	assert.Zero(t, Value(remote), "CountLocal counted on a remote run")

	lines := []Line{{Name: in, Label: "in", Rate: true}, {Name: out, Label: "out"}}
	last := []int64{2, 0}
	assert.Equal(t, "progress: in 1 msg/s (4) | out 1", Format(lines, last, 2*time.Second))
	assert.Equal(t, []int64{4, 1}, last)
}
