package templates

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/ports"
)

// scripts are the scripts this package's templates come with, each with an
// argument it refuses (publish-sample.sh passes other pipeline flags over,
// so that it takes the flags local-broker.sh prints).
var scripts = map[string]string{"build-template.sh": "--no-such-option", "run-template.sh": "--no-such-option",
	"local-broker.sh": "--no-such-option", "publish-sample.sh": "stray-argument"}

func TestScriptsUsage(t *testing.T) {
	for s, bad := range scripts {
		t.Run(s, func(t *testing.T) {
			if _, errOut, status := runScript(t, s, "-h"); status != 0 || !strings.Contains(errOut, "usage: scripts/"+s) {
				t.Errorf("-h: exit status %d, stderr %q; want 0 and the usage", status, errOut)
			}
			if _, errOut, status := runScript(t, s, bad); status != 2 || !strings.Contains(errOut, "usage: scripts/"+s) {
				t.Errorf("%s: exit status %d, stderr %q; want 2 and the usage", bad, status, errOut)
			}
		})
	}
}

func TestShellcheck(t *testing.T) {
	bin, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed (Debian package shellcheck); CI runs it")
	}
	args := []string{"-x", filepath.Join("scripts", "template-common.sh")}
	for s := range scripts {
		args = append(args, filepath.Join("scripts", s))
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

func TestBuildTemplatePrintOnly(t *testing.T) {
	image := "europe-west1-docker.pkg.dev/my-project/repo/telemetry:v2"
	got := script(t, 0, "build-template.sh", "--print-only", "--project", "my-project", "--region", "europe-west1",
		"--bucket", "gs://my-bucket/", "--repository", "repo", "--tag", "v2", "telemetry")
	want := "gcloud builds submit --project my-project --region europe-west1 --config templates/cloudbuild.yaml " +
		"--ignore-file templates/build.gcloudignore " +
		"--substitutions _DOCKERFILE=templates/telemetry/Dockerfile,_IMAGE=" + image + " .\n" +
		"gcloud dataflow flex-template build gs://my-bucket/templates/telemetry.json --project my-project " +
		"--image " + image + " --sdk-language GO --metadata-file templates/telemetry/metadata.json\n"
	if got != want {
		t.Errorf("build-template.sh --print-only printed:\n%s\nwant:\n%s", got, want)
	}

	got = script(t, 0, "build-template.sh", "--print-only", "--docker", "--project", "p-123456", "--bucket", "b", "--tag", "t", "telemetry")
	image = "us-central1-docker.pkg.dev/p-123456/mqttbeam/telemetry:t"
	if !strings.HasPrefix(got, "docker build -f templates/telemetry/Dockerfile -t "+image+" .\ndocker push "+image+"\n") {
		t.Errorf("build-template.sh --docker --print-only printed:\n%s", got)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--print-only", "--bucket", "b", "telemetry"}, "no project"},
		{[]string{"--print-only", "--project", "p", "telemetry"}, "no bucket"},
		{[]string{"--print-only", "--project", "p", "--bucket", "b", "nosuch"}, "no template 'nosuch'"},
		{[]string{"--print-only", "--project", "p", "--bucket", "b"}, "no template NAME"},
	} {
		if _, errOut, status := runScript(t, "build-template.sh", tc.args...); status != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("build-template.sh %v: exit status %d, stderr %q; want 2 and %q", tc.args, status, errOut, tc.want)
		}
	}
}

func TestRunTemplatePrintOnly(t *testing.T) {
	params := filepath.Join(t.TempDir(), "params")
	write := func(content string) {
		if err := os.WriteFile(params, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# a comment\n\nbroker=ssl://a:8883,ssl://b:8883\noutput_table=p:d.t\ntopic=devices/+/x/#\nusername=a b\n")
	args := []string{"--print-only", "--project", "my-project", "--bucket", "bkt", "--job-name", "tele-1", "telemetry", params}
	got := script(t, 0, "run-template.sh", append(args, "--", "--max-workers", "3")...)
	want := "gcloud dataflow flex-template run tele-1 --project my-project --region us-central1 " +
		"--template-file-gcs-location gs://bkt/templates/telemetry.json " +
		"--staging-location gs://bkt/staging --temp-location gs://bkt/temp " +
		"'--parameters=^~^broker=ssl://a:8883,ssl://b:8883' --parameters=output_table=p:d.t " +
		"'--parameters=topic=devices/+/x/#' '--parameters=username=a b' --max-workers 3\n"
	if got != want {
		t.Errorf("run-template.sh --print-only printed:\n%s\nwant:\n%s", got, want)
	}
	// What it prints is a command the shell reads back into the same words.
	words := script(t, 0, "run-template.sh", args...)
	out, err := exec.Command("bash", "-c", `printf '%s\n' `+strings.TrimPrefix(words, "gcloud ")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "\n--parameters=username=a b\n") {
		t.Errorf("the printed command does not read back as the arguments:\n%s", out)
	}

	for _, tc := range []struct{ content, want string }{
		{"password=hunter2\n", "password_secret"},
		{"tls_key=/template/files/client-key.pem\n", "tls_key_secret"},
		{"no_such_parameter=1\n", "no_such_parameter is not a parameter of telemetry"},
		{"broker\n", "not KEY=VALUE"},
		{"# nothing\n", "has no parameters"},
	} {
		write(tc.content)
		_, errOut, status := runScript(t, "run-template.sh", args...)
		if status != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("params %q: exit status %d, stderr %q; want 2 and %q", tc.content, status, errOut, tc.want)
		}
		if strings.Contains(errOut, "hunter2") {
			t.Errorf("run-template.sh printed the password: %q", errOut)
		}
	}
}

// TestLocalBrokerAndPublishSample starts scripts/local-broker.sh, publishes
// the sample telemetry with scripts/publish-sample.sh through the flags it
// printed, checks that a TLS subscriber that trusts only the generated CA
// receives every sample, then stops the broker with SIGINT (Ctrl-C) and
// checks that it removed its folder.
func TestLocalBrokerAndPublishSample(t *testing.T) {
	for _, tool := range []string{"openssl", "mosquitto_pub", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" is not installed")
		}
	}
	if _, err := exec.LookPath("mosquitto"); err != nil {
		if _, err := os.Stat("/usr/sbin/mosquitto"); err != nil {
			skipOrFail(t, "mosquitto is not installed")
		}
	}
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	broker := exec.CommandContext(ctx, "bash", "scripts/local-broker.sh", "--port", fmt.Sprint(port), "--max-inflight", "100")
	broker.Dir = root
	stdout, err := broker.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	broker.Stderr = &stderr
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	waiting := false
	stopped := false
	t.Cleanup(func() {
		if stopped {
			return
		}
		_ = broker.Process.Signal(syscall.SIGTERM)
		if waiting {
			<-exited
		} else {
			_ = broker.Wait()
		}
	})
	flags := readFlags(t, stdout)
	go func() {
		_, _ = io.Copy(io.Discard, stdout)
		exited <- broker.Wait()
	}()
	waiting = true

	want := regexp.MustCompile(fmt.Sprintf(`^--broker=ssl://127\.0\.0\.1:%d --tls_ca=(\S+/ca\.pem) --inflight_window=100$`, port))
	m := want.FindStringSubmatch(flags)
	if m == nil {
		t.Fatalf("local-broker.sh printed flags %q, want %v", flags, want)
	}
	caFile := m[1]

	tlsConfig, err := certs.ClientTLSConfig(caFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	inbox := brokertest.NewInbox(100)
	sub := brokertest.Connect(t, brokertest.ClientOptions(fmt.Sprintf("ssl://127.0.0.1:%d", port), "sample-check").SetTLSConfig(tlsConfig))
	brokertest.Await(t, sub.Subscribe("devices/#", 1, inbox.Handle))

	samples := countLines(t, filepath.Join(root, "testdata", "telemetry", "good.jsonl"))
	script(t, 0, "publish-sample.sh", strings.Fields(flags)...)
	got := brokertest.Payloads(inbox.Next(t, samples))
	for _, p := range got {
		if !strings.HasPrefix(p, "{") {
			t.Errorf("received payload %q, want a JSON sample", p)
		}
	}

	// Plain TLS without the CA is refused: the broker's certificate is
	// the generated one.
	if _, err := brokertest.TryConnect(brokertest.ClientOptions(fmt.Sprintf("ssl://127.0.0.1:%d", port), "untrusting").
		SetTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12})); err == nil {
		t.Error("a client that does not trust the generated CA connected")
	}

	if err := broker.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("local-broker.sh after SIGINT: %v\n%s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("local-broker.sh did not stop after SIGINT\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Dir(caFile)); !os.IsNotExist(err) {
		t.Errorf("local-broker.sh left %s behind (stat: %v)", filepath.Dir(caFile), err)
	}
	if _, err := brokertest.TryConnect(brokertest.ClientOptions(fmt.Sprintf("ssl://127.0.0.1:%d", port), "after").SetTLSConfig(tlsConfig)); err == nil {
		t.Error("the broker still accepts connections after SIGINT")
	}
}

// readFlags reads local-broker.sh's output up to its "FLAGS: " line.
func readFlags(t *testing.T, r io.Reader) string {
	t.Helper()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if flags, ok := strings.CutPrefix(sc.Text(), "FLAGS: "); ok {
			return flags
		}
	}
	t.Fatalf("local-broker.sh ended without a FLAGS line (%v)", sc.Err())
	return ""
}

// countLines counts the non-empty lines of a JSON lines file.
func countLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(data)) {
		if strings.TrimSpace(line) != "" {
			n++
		}
	}
	return n
}

// skipOrFail skips the test for a missing tool, or fails it when CI
// requires the Mosquitto tests (brokertest.RequireMosquittoEnv).
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv(brokertest.RequireMosquittoEnv) == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}
