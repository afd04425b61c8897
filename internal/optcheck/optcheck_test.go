package optcheck

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type config struct{ d time.Duration }

func TestDurationChecks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check func(string, time.Duration, func(*config)) func(*config) error
		d     time.Duration
		want  string // error, "" when the option applies
	}{
		{"Positive", Positive[config], time.Second, ""},
		{"Positive", Positive[config], 0, "option Positive: must be positive, got 0s"},
		{"Positive", Positive[config], -time.Second, "option Positive: must be positive, got -1s"},
		{"NonNegative", NonNegative[config], 0, ""},
		{"NonNegative", NonNegative[config], time.Second, ""},
		{"NonNegative", NonNegative[config], -time.Second, "option NonNegative: must not be negative, got -1s"},
	} {
		c := config{d: 42}
		err := tc.check(tc.name, tc.d, func(c *config) { c.d = tc.d })(&c)
		if tc.want == "" {
			require.NoError(t, err)
			assert.Equal(t, tc.d, c.d, "%s(%v) did not apply", tc.name, tc.d)
			continue
		}
		require.EqualError(t, err, tc.want)
		assert.Equal(t, time.Duration(42), c.d, "%s(%v) applied despite the error", tc.name, tc.d)
	}
}
