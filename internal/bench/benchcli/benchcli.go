// Package benchcli is what the benchmark tools (mqttiobench,
// telemetrybench) share: their subcommand dispatch and the reading of
// result files.
package benchcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mqttbeam/mqttbeam/internal/ports"
)

// Command runs a subcommand with its arguments.
type Command func(ctx context.Context, args []string) error

// Main runs the subcommand that os.Args names: one of commands, or
// "freeport" (print a free TCP port on 127.0.0.1), or help. It prints usage
// and exits 2 on no or an unknown subcommand or a -h, and prints
// "TOOL SUBCOMMAND: error" and exits 1 when the subcommand fails.
func Main(tool string, usage func(), commands map[string]Command) {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch run, ok := commands[cmd]; {
	case ok:
		err = run(context.Background(), args)
	case cmd == "-h" || cmd == "-help" || cmd == "--help" || cmd == "help":
		usage()
		return
	case cmd == "freeport":
		var port int
		if port, err = ports.Free("127.0.0.1"); err == nil {
			fmt.Println(port)
		}
	default:
		fmt.Fprintf(os.Stderr, "%s: unknown subcommand %q\n", tool, cmd)
		usage()
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %s: %v\n", tool, cmd, err)
		os.Exit(1)
	}
}

// ReadResults reads the result files (name=value lines) of a summary as
// one text, a newline after each file.
func ReadResults(tool string, files []string) (io.Reader, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("usage: %s summarize FILE...", tool)
	}
	var all strings.Builder
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		all.Write(b)
		all.WriteByte('\n')
	}
	return strings.NewReader(all.String()), nil
}
