package aggregate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWatermarkStepFallsOnEveryEndAndExpiry(t *testing.T) {
	for name, tc := range map[string]struct {
		opts []Option
		want time.Duration
	}{
		"default minute":             {nil, time.Minute},
		"fixed 10s":                  {[]Option{Fixed(10 * time.Second)}, 10 * time.Second},
		"fixed hour is capped":       {[]Option{Fixed(time.Hour)}, time.Minute},
		"fixed 90s":                  {[]Option{Fixed(90 * time.Second)}, 30 * time.Second},
		"fixed 10s, lateness 15s":    {[]Option{Fixed(10 * time.Second), AllowedLateness(15 * time.Second)}, 5 * time.Second},
		"sliding 1m every 20s":       {[]Option{Sliding(time.Minute, 20*time.Second)}, 20 * time.Second},
		"sliding 25s every 10s":      {[]Option{Sliding(25*time.Second, 10*time.Second)}, 5 * time.Second},
		"session 30s":                {[]Option{Session(30 * time.Second)}, time.Second},
		"session 250ms":              {[]Option{Session(250 * time.Millisecond)}, 250 * time.Millisecond},
		"fixed 1500ms, lateness 1ms": {[]Option{Fixed(1500 * time.Millisecond), AllowedLateness(time.Millisecond)}, time.Millisecond},
	} {
		got, err := WatermarkStep(tc.opts...)
		require.NoError(t, err, name)
		assert.Equal(t, tc.want, got, name)

		// Every end and expiry of the windows of a run of readings is a
		// whole number of steps.
		cfg, err := newConfig(tc.opts)
		require.NoError(t, err)
		if cfg.Kind == kindSession {
			continue
		}
		for ts := int64(1_700_000_000_000); ts < 1_700_000_000_000+int64(3*cfg.Size/time.Millisecond); ts += 7 {
			first, last := cfg.expiries(ts)
			lateness := cfg.AllowedLateness.Milliseconds()
			for _, at := range []int64{first, last, first - lateness, last - lateness} {
				require.Zero(t, at%got.Milliseconds(), "%s: %d is not on the step", name, at)
			}
		}
	}
	_, err := WatermarkStep(Fixed(-time.Second))
	require.ErrorContains(t, err, "Fixed")
}
