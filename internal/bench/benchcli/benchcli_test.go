package benchcli

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadResultsJoinsFilesByLine(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	require.NoError(t, os.WriteFile(a, []byte("x=1"), 0o644)) // no final newline
	require.NoError(t, os.WriteFile(b, []byte("y=2\n"), 0o644))
	r, err := ReadResults("tool", []string{a, b})
	require.NoError(t, err)
	all, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "x=1\ny=2\n\n", string(all))

	_, err = ReadResults("tool", nil)
	require.EqualError(t, err, "usage: tool summarize FILE...")
	_, err = ReadResults("tool", []string{filepath.Join(dir, "missing")})
	require.ErrorIs(t, err, os.ErrNotExist)
}
