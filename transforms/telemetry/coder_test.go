package telemetry

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadingCoderRoundTrips(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	for name, r := range map[string]Reading{
		"zero": {},
		"full": {
			DeviceID: "dev-1", Kind: "env", Topic: "devices/dev-1/telemetry/env",
			EventTime:   time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.UTC),
			ReceivedAt:  time.Date(2026, 11, 24, 13, 0, 1, 0, time.UTC),
			TimeSource:  TimeFromPayload,
			Metrics:     map[string]float64{"temperature": 21.5, "humidity": -0.0, "max": math.MaxFloat64},
			Attributes:  map[string]string{"site": "berlin", "ok": "true", "": "empty name"},
			PayloadHash: math.MaxUint64,
		},
		"unicode and no maps": {DeviceID: "gerät-ü", Topic: "devices/gerät-ü/telemetry", TimeSource: TimeFromReceived,
			ReceivedAt: time.Unix(0, 1).UTC()},
	} {
		b, err := EncodeReading(r)
		require.NoError(t, err, name)
		got, err := DecodeReading(b)
		require.NoError(t, err, name)
		assert.Equal(t, r, got, name)

		// Every cut of the encoding is an error, not a panic or a
		// different reading.
		for i := range b {
			_, err := DecodeReading(b[:i])
			require.Error(t, err, "%s: %d of %d bytes", name, i, len(b))
		}
		_, err = DecodeReading(append(b, 0))
		require.ErrorContains(t, err, "left over", name)
	}
	// A time in another zone keeps its instant and offset (not the zone's
	// name, as time.Time's binary form).
	in := Reading{EventTime: time.Date(2026, 11, 24, 13, 0, 1, 0, berlin)}
	b, err := EncodeReading(in)
	require.NoError(t, err)
	out, err := DecodeReading(b)
	require.NoError(t, err)
	assert.True(t, out.EventTime.Equal(in.EventTime))
	_, offset := out.EventTime.Zone()
	assert.Equal(t, 3600, offset)

	_, err = DecodeReading([]byte{9})
	require.ErrorContains(t, err, "coder version 9")
}

// Beam uses the coder wherever a Reading crosses the runner.
func TestReadingUsesItsCoder(t *testing.T) {
	r := Reading{DeviceID: "d", Metrics: map[string]float64{"t": 1}, EventTime: time.Unix(5, 0).UTC(), ReceivedAt: time.Unix(6, 0).UTC()}
	var buf bytes.Buffer
	require.NoError(t, beam.NewElementEncoder(reflect.TypeFor[Reading]()).Encode(r, &buf))
	want, err := EncodeReading(r)
	require.NoError(t, err)
	assert.Equal(t, append(binary.AppendUvarint(nil, uint64(len(want))), want...), buf.Bytes(),
		"the length-prefixed EncodeReading")
	got, err := beam.NewElementDecoder(reflect.TypeFor[Reading]()).Decode(&buf)
	require.NoError(t, err)
	assert.Equal(t, r, got)
}

func FuzzDecodeReading(f *testing.F) {
	b, err := EncodeReading(Reading{DeviceID: "d", Metrics: map[string]float64{"t": 1}, Attributes: map[string]string{"a": "b"}})
	require.NoError(f, err)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeReading(b)
		if err != nil {
			return
		}
		again, err := EncodeReading(r)
		require.NoError(t, err)
		r2, err := DecodeReading(again)
		require.NoError(t, err)
		assert.Equal(t, r, r2)
	})
}
