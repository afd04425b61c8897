package jsonl

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// ReadFile reads back a file that Write wrote: every line of the file at
// path decoded into a T, in file order. It is for checking a local run's
// output (tests, scripts); an unreadable file or a line that is not a T is
// an error that names the file and the line number. Empty lines are skipped.
func ReadFile[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("jsonl: %w", err)
	}
	defer f.Close()
	var out []T
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && string(line) != "\n" {
			var v T
			if err := json.Unmarshal(line, &v); err != nil {
				return out, fmt.Errorf("jsonl: %s line %d: %w", path, n, err)
			}
			out = append(out, v)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("jsonl: reading %s: %w", path, err)
		}
	}
}
