package jsonappend

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// same checks that got encodes v as json.Marshal does, error included.
func same(t *testing.T, v any, got []byte, err error) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	if wantErr != nil {
		require.Error(t, err, "%#v: json.Marshal fails (%v)", v, wantErr)
		return
	}
	require.NoError(t, err, "%#v", v)
	require.Equal(t, string(want), string(got), "%#v", v)
}

func TestStringIsEncodingJSONs(t *testing.T) {
	for _, s := range []string{
		"", "device-1", "a b/c_d.e~", `quote " and \ backslash`, "tab\tnewline\n\x00\x1f", "<script>&amp;",
		"Grüße, 温度", "\u2028\u2029", "bad utf-8 \xff\xfe", "\x7f del",
	} {
		same(t, s, String(nil, s), nil)
	}
}

func TestFloatIsEncodingJSONs(t *testing.T) {
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 21.5, 0.1, 1e-6, 9.99e-7, 1e-7, 1.5e-10, 1e20, 1e21, 1.2345e21,
		-3e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, 123456789.125, math.NaN(), math.Inf(1), math.Inf(-1)}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		floats = append(floats, (rng.Float64()-0.5)*math.Pow(10, float64(rng.IntN(60)-30)))
	}
	for _, f := range floats {
		got, err := Float(nil, f)
		same(t, f, got, err)
	}
}

func TestTimeIsEncodingJSONs(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.UTC),
		time.Date(2026, 11, 24, 12, 0, 0, 120000000, time.FixedZone("X", 5*3600+30*60)),
		time.Date(2026, 11, 24, 12, 0, 0, 0, time.FixedZone("Odd", 7)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := Time(nil, tm)
		same(t, tm, got, err)
	}
}

func TestIntAndBool(t *testing.T) {
	for _, i := range []int64{0, -1, math.MaxInt64, math.MinInt64} {
		same(t, i, Int(nil, i), nil)
	}
	same(t, true, Bool(nil, true), nil)
	same(t, false, Bool(nil, false), nil)
}

// BenchmarkString is the common case: a short ASCII string.
func BenchmarkString(b *testing.B) {
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = String(buf[:0], "devices/d-000042/telemetry")
	}
}
