package jobflags

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// LogFile is where a local run writes Beam's and prism's log lines (the
// execution plan of a failed bundle among them) unless --verbose is given:
// mqttbeam-JOB.log in the temporary directory ($TMPDIR or /tmp), replaced
// by each run.
func LogFile(job string) string {
	return filepath.Join(os.TempDir(), "mqttbeam-"+job+".log")
}

// setupLogging sorts a local run's output: the job's own lines (start-up,
// progress, the end) go to standard output, Beam's and prism's log lines to
// LogFile, and standard error gets only the line of an error (Exit). With
// --verbose, or on Dataflow, everything stays on standard error. It
// returns the log file's path, empty when nothing was redirected.
func setupLogging(job string, c *Control) string {
	if !IsLocal(c.Runner) || c.Verbose {
		return ""
	}
	path := LogFile(job)
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot write the log file, logging to standard error: %v\n", job, err)
		return ""
	}
	// The file lives as long as the process. SetDefault also sends the log
	// package to the file: the job's own lines go to standard output.
	slog.SetDefault(slog.New(slog.NewTextHandler(f, nil)))
	log.SetOutput(os.Stdout)
	log.SetFlags(log.LstdFlags)
	return path
}

// runError is the error of a pipeline that ran and failed (Run): Beam's
// error with every stage's plan, of which a user needs the root cause.
type runError struct{ err error }

func (e *runError) Error() string { return "running the job: " + e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// RootCause is the line of err a user needs: for the error of a run, the
// last cause in Beam's chain (the text after its last "caused by:", without
// the line naming the failing DoFn, first line only); for other errors
// their text on one line.
func RootCause(err error) string {
	msg := err.Error()
	var re *runError
	if errors.As(err, &re) {
		msg = re.err.Error()
		if i := strings.LastIndex(msg, "caused by:"); i >= 0 {
			msg = msg[i+len("caused by:"):]
		}
		msg = strings.TrimSpace(msg)
		if first, rest, ok := strings.Cut(msg, "\n"); ok && strings.HasPrefix(first, "DoFn[") {
			msg = rest
		}
		msg, _, _ = strings.Cut(strings.TrimSpace(msg), "\n")
	}
	return strings.Join(strings.Fields(msg), " ")
}

// fixes are the flags to check for the errors mqttio reports, by a
// substring of the error.
var fixes = []struct{ cause, fix string }{
	{"refused the credentials", "check --username and --password (or --password_secret)"},
	{"not authorised: bad user name or password", "check --username and --password (or --password_secret)"},
	{"never connected", "check --broker"},
	{"mqttio.Write: connecting to", "check --broker and that the broker is up"},
	{"rejected the client id", "check --client_id"},
	{"certificate is not trusted", "check --tls_ca and --tls_server_name"},
	{"refused the handshake", "check --tls_cert and --tls_key (or --tls_key_secret)"},
	{"refused the subscription", "check --topic and the user's permissions on the broker"},
}

// errorLine is the one line Exit prints for err: the root cause, the flags
// to check, and where the details are.
func errorLine(job string, err error, logFile string) string {
	line := job + ": " + RootCause(err)
	for _, f := range fixes {
		if strings.Contains(line, f.cause) {
			line += "; " + f.fix
			break
		}
	}
	var re *runError
	if logFile != "" && errors.As(err, &re) {
		line += " (details in " + logFile + "; --verbose prints them here)"
	}
	return line
}

// report writes err's line to w, after the full error with --verbose; the
// full error also goes to the log file.
func report(w io.Writer, job string, c *Control, err error) {
	switch {
	case c.logFile != "":
		slog.Error(job+" failed", "error", err)
	case c.Verbose:
		fmt.Fprintf(w, "%s: %v\n", job, err)
	}
	fmt.Fprintln(w, errorLine(job, err, c.logFile))
}
