package wire

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.FixedZone("", 5*3600+30*60))
	odd := time.Date(1900, 1, 1, 0, 0, 0, 0, time.FixedZone("", 17)) // an offset with seconds
	b := AppendUvarint(nil, 300)
	b = AppendVarint(b, -3)
	b = AppendString(b, "gerät")
	b = AppendString(b, "")
	b = AppendBytes(b, []byte{0, 1})
	b = AppendUint64(b, math.MaxUint64)
	b = AppendFloat64(b, -1.5)
	b, err := AppendTime(b, at)
	require.NoError(t, err)
	b, err = AppendTime(b, odd)
	require.NoError(t, err)
	b = append(b, 7)

	read := func(b []byte) (*Reader, []any) {
		r := NewReader(b)
		return r, []any{r.Uvarint(), r.Varint(), r.String(), r.String(), r.Bytes(), r.Uint64(), r.Float64(), r.Time(), r.Time(), r.Byte()}
	}
	r, got := read(b)
	require.NoError(t, r.Err())
	assert.Equal(t, []any{uint64(300), int64(-3), "gerät", "", []byte{0, 1}, uint64(math.MaxUint64), -1.5, got[7], got[8], byte(7)}, got)
	assert.True(t, got[7].(time.Time).Equal(at))
	assert.True(t, got[8].(time.Time).Equal(odd))

	for i := range b {
		r, _ := read(b[:i])
		require.ErrorIs(t, r.Err(), ErrShort, "cut at %d of %d", i, len(b))
	}
	r = NewReader([]byte{1, 2})
	assert.Equal(t, byte(1), r.Byte())
	assert.ErrorContains(t, r.Err(), "1 bytes left over")
}

func TestCountRefusesMoreItemsThanBytes(t *testing.T) {
	r := NewReader(AppendUvarint(nil, 1<<40))
	assert.Zero(t, r.Count())
	assert.ErrorIs(t, r.Err(), ErrShort)
}

func TestStringMap(t *testing.T) {
	b := AppendUvarint(nil, 2)
	b = AppendString(AppendString(b, "site"), "berlin")
	b = AppendString(AppendString(b, "ok"), "")
	b = AppendUvarint(b, 0)
	r := NewReader(b)
	assert.Equal(t, map[string]string{"site": "berlin", "ok": ""}, r.StringMap())
	assert.Nil(t, r.StringMap())
	require.NoError(t, r.Err())
	for i := range b[:len(b)-1] {
		r := NewReader(b[:i])
		r.StringMap()
		require.ErrorIs(t, r.Err(), ErrShort, "cut at %d of %d", i, len(b))
	}
}
