package progress

import (
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/stretchr/testify/assert"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func TestCountAndFormat(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	Count(s, "test_in", beam.Create(s, 1, 2, 3, 4))
	Count(s, "test_out", beam.Create(s, "a"))
	ptest.RunAndValidate(t, p)

	lines := []Line{{Name: "test_in", Label: "in", Rate: true}, {Name: "test_out", Label: "out"}}
	last := []int64{2, 0}
	assert.Equal(t, "progress: in 1 msg/s (4) | out 1", Format(lines, last, 2*time.Second))
	assert.Equal(t, []int64{4, 1}, last)
}
