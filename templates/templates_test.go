package templates

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/resname"
	"github.com/mqttbeam/mqttbeam/templates/internal/gen"
	"github.com/mqttbeam/mqttbeam/templates/internal/metadata"
)

// root is the repository root, relative to this package's folder.
const root = ".."

// buildTimeout bounds building the pipeline binaries: a cold build of Beam
// takes about 2.5 minutes on 2 cores.
const buildTimeout = 10 * time.Minute

// examples are a value each parameter's regexes must accept and one they
// must reject, by parameter name (the pipelines share flag names, so one
// table serves every template). A parameter with regexes needs an entry.
var examples = map[string]struct{ good, bad string }{
	"broker":               {"ssl://broker-1.example.com:8883,ssl://10.0.0.2:8883,wss://broker.example.com/mqtt", "broker-1.example.com:8883"},
	"output_table":         {"my-project:telemetry.aggregates", "my-project.telemetry.aggregates"},
	"raw_table":            {"example.com:my-project:telemetry.raw_readings", "telemetry.raw_readings"},
	"dead_letter_table":    {"my-project:telemetry.dead_letters", "my-project:telemetry"},
	"command_table":        {"my-project:telemetry.commands", "My-Project:telemetry.commands"},
	"topic":                {"devices/+/telemetry/#,$share/g/alerts/+", "devices/#/telemetry"},
	"device_topic":         {"devices/{device_id}/telemetry/{kind}", "devices/+/telemetry/#"},
	"payload_format":       {"sparkplug_b", "protobuf"},
	"format_route":         {"gateways/{device_id}/telemetry=batch,devices/{device_id}/values/{metric}=value,spBv1.0/#=sparkplug_b", "gateways/+/telemetry=batch"},
	"batch_field":          {"readings", ""},
	"device_id_field":      {"device_id", ""},
	"json_arrays":          {"ignored", "flat"},
	"sparkplug_device_id":  {"{edge_node_id}.{device_id}", "{group_id}/{device_id}"},
	"sparkplug_rebirth":    {"30s", "30"},
	"influx_precision":     {"ms", "1ms"},
	"client_id":            {"mqttbeam-telemetry-prod", "telemetry job"},
	"password_secret":      {"projects/my-project/secrets/mqtt-password/versions/latest", "mqtt-password"},
	"tls_ca":               {"/template/files/ca.pem", "files/ca.pem"},
	"tls_cert":             {"/template/files/client.pem", "client.pem"},
	"tls_key_secret":       {"projects/my-project/secrets/mqtt-client-key/versions/2", "/template/files/client-key.pem"},
	"tls_server_name":      {"broker.example.com", "broker.example.com:8883"},
	"qos":                  {"1", "3"},
	"inflight_window":      {"1000", "-1"},
	"mqtt_version":         {"5", "4"},
	"session_expiry":       {"24h", "1 day"},
	"readers":              {"4", "-1"},
	"max_out_of_orderness": {"1.5s", "1.5"},
	"window":               {"1h30m", "90"},
	"window_period":        {"30s", "30 s"},
	"allowed_lateness":     {"0", "-1m"},
	"registry_refresh":     {"5m", "five minutes"},
	"window_type":          {"sliding", "tumbling"},
	"registry":             {"bq://my-project:fleet.devices", "/template/files/devices.csv"},
	"rules":                {"/template/files/rules.yaml", "/template/files/rules.txt"},
	"command_topic":        {"devices/{device_id}/commands", "devices/+/commands"},
	"mqtt_topic_template":  {"devices/{device_id}/commands", "devices/#"},
	"input_subscription":   {"projects/my-project/subscriptions/commands-sub", "commands-sub"},
	"output_topic":         {"projects/my-project/topics/telemetry", "projects/my-project/subscriptions/telemetry"},
	"ordering_key":         {"device_id", "device"},
	"direction":            {"pubsub_to_mqtt", "both"},
}

// freeText are the parameters that have no shape, so no regex.
var freeText = []string{"username"}

// launcherFlags are Beam's flags that gcloud's own options or the template
// launcher set (or that the binary sets itself when launched, see
// the pipelines' jobflags.ApplyTemplateLauncher): never template parameters, even when Beam
// marks them required.
var launcherFlags = []string{"runner", "project", "region", "staging_location", "temp_location", "job_name",
	"worker_binary", "execute_async", "async", "service_account_email", "network", "subnetwork",
	"num_workers", "max_num_workers", "worker_machine_type", "machine_type", "worker_region", "worker_zone", "zone"}

// localOnly tells the flags of local runs by their usage: they must not be
// template parameters (the plain password above all).
var localOnly = regexp.MustCompile(`(?i)local runs?\b|local directory|with --broker=embedded`)

// templateNames are the folders here with a metadata.json.
func templateNames(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("*", metadata.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no templates found (*/metadata.json)")
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Dir(p))
	}
	return names
}

func load(t *testing.T, name string) *metadata.Template {
	t.Helper()
	m, err := metadata.Load(filepath.Join(name, metadata.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// buildPipelines builds the binaries of the named pipelines into a
// temporary folder, in one go build, and returns the folder.
func buildPipelines(t *testing.T, names []string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./pipelines/"+n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v (timeout %v)\n%s", strings.Join(args, " "), err, buildTimeout, out)
	}
	return dir
}

// pipelineFlags runs a pipeline binary with -help and returns its flags'
// usage texts by name, without the "(default ...)" the flag package adds.
func pipelineFlags(t *testing.T, bin string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -help: %v\n%s", bin, err, out)
	}
	flags := map[string]string{}
	var name string
	var usage []string
	flush := func() {
		if name != "" {
			flags[name] = defaultSuffix.ReplaceAllString(strings.Join(usage, "\n"), "")
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "  -"):
			flush()
			name, usage = strings.Fields(line)[0][1:], nil
		case strings.HasPrefix(line, "    \t"):
			usage = append(usage, strings.TrimPrefix(line, "    \t"))
		}
	}
	flush()
	if len(flags) < 10 {
		t.Fatalf("%s -help listed %d flags, want the pipeline's and Beam's:\n%s", bin, len(flags), out)
	}
	return flags
}

var defaultSuffix = regexp.MustCompile(` \(default .*\)$`)

// required reports whether a flag's usage marks it required (on Dataflow),
// as the pipelines' -help writes it: its usage ends in " (required)" or
// " (required on Dataflow)".
func required(usage string) bool {
	return strings.HasSuffix(usage, " (required)") || strings.HasSuffix(usage, " (required on Dataflow)")
}

// TestPipelineBinaries builds every template's pipeline and checks the
// template against the binary: its flags, and a launch as Dataflow's
// template launcher would run it.
func TestPipelineBinaries(t *testing.T) {
	names := templateNames(t)
	bins := buildPipelines(t, names)
	for _, name := range names {
		bin := filepath.Join(bins, name)
		t.Run(name+"/flags", func(t *testing.T) { checkFlags(t, name, bin) })
		t.Run(name+"/launch", func(t *testing.T) { checkLaunch(t, name, bin) })
	}
}

// checkFlags checks that every parameter is a flag of the pipeline, that
// the required flags are the non-optional parameters, and that no local-only
// flag or Beam flag the launcher sets is a parameter.
func checkFlags(t *testing.T, name, bin string) {
	m := load(t, name)
	flags := pipelineFlags(t, bin)
	params := map[string]*metadata.Parameter{}
	for _, p := range m.Parameters {
		params[p.Name] = p
		usage, ok := flags[p.Name]
		switch {
		case !ok:
			t.Errorf("parameter %q is not a flag of pipelines/%s", p.Name, name)
		case slices.Contains(launcherFlags, p.Name):
			t.Errorf("parameter %q is a Beam flag that gcloud or the launcher sets", p.Name)
		case localOnly.MatchString(usage):
			t.Errorf("parameter %q is a flag for local runs only (%q)", p.Name, usage)
		case p.IsOptional == required(usage):
			t.Errorf("parameter %q: isOptional is %v, but the flag's usage %q says required=%v",
				p.Name, p.IsOptional, usage, required(usage))
		}
	}
	for flag, usage := range flags {
		if required(usage) && !slices.Contains(launcherFlags, flag) && params[flag] == nil {
			t.Errorf("flag --%s is required (%q) but not a template parameter", flag, usage)
		}
	}
	// Secrets come from Secret Manager, never as parameters or files.
	for plain, secret := range map[string]string{"password": "password_secret", "tls_key": "tls_key_secret"} {
		if _, ok := flags[secret]; ok && params[secret] == nil {
			t.Errorf("the pipeline takes --%s but the template has no %s parameter", secret, secret)
		}
		if params[plain] != nil {
			t.Errorf("%s is a template parameter: it must come from %s", plain, secret)
		}
	}
}

// checkLaunch runs the pipeline as the template launcher would, with the
// template's params.example as flags, translating the job for Dataflow
// without submitting it (--dry_run, offline): the parameters a user copies
// from the README are ones the binary accepts.
func checkLaunch(t *testing.T, name, bin string) {
	args := []string{"--runner=dataflow", "--dry_run", "--project=my-project", "--region=us-central1",
		"--staging_location=gs://my-bucket/staging", "--temp_location=gs://my-bucket/temp"}
	for k, v := range readParams(t, filepath.Join(name, "params.example")) {
		args = append(args, "--"+k+"="+v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), gen.LauncherEnv+"="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Dry-run: not submitting job") {
		t.Fatalf("%s %s: %v, want a dry run\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestParameterRegexes checks that every parameter with a shape has regexes
// that compile as POSIX ERE, accept its example and reject a bad value.
func TestParameterRegexes(t *testing.T) {
	for _, name := range templateNames(t) {
		m := load(t, name)
		for _, p := range m.Parameters {
			t.Run(name+"/"+p.Name, func(t *testing.T) {
				if len(p.Regexes) == 0 {
					if !slices.Contains(freeText, p.Name) {
						t.Fatalf("no regexes: give the parameter's shape (or list it in freeText)")
					}
					return
				}
				ex, ok := examples[p.Name]
				if !ok {
					t.Fatalf("no good and bad example in this test's examples")
				}
				if err := matchAll(p, ex.good); err != nil {
					t.Errorf("example %q: %v", ex.good, err)
				}
				if matchAll(p, ex.bad) == nil {
					t.Errorf("bad value %q is accepted", ex.bad)
				}
				if want, ok := sharedRegex(p); ok && !slices.Equal(p.Regexes, []string{want}) {
					t.Errorf("regexes %q, want the pipelines' own %q", p.Regexes, want)
				}
				if strings.HasSuffix(p.Name, "_table") && p.ParamType != "BIGQUERY_TABLE" {
					t.Errorf("a table parameter has paramType %s, want BIGQUERY_TABLE", p.ParamType)
				}
			})
		}
	}
}

// sharedRegex is the regex the pipelines themselves validate a parameter
// with, where they export one: the template must use the same.
func sharedRegex(p *metadata.Parameter) (string, bool) {
	switch {
	case p.ParamType == "BIGQUERY_TABLE":
		return resname.Table, true
	case p.ParamType == "PUBSUB_TOPIC":
		return resname.Topic, true
	case p.ParamType == "PUBSUB_SUBSCRIPTION":
		return resname.Subscription, true
	case p.Name == "password_secret", p.Name == "tls_key_secret":
		return resname.SecretVersion, true
	}
	return "", false
}

// matchAll returns an error unless every regex of p accepts v.
func matchAll(p *metadata.Parameter, v string) error {
	for _, re := range p.Regexes {
		c, err := metadata.CompileRegex(re)
		if err != nil {
			return err
		}
		if !c.MatchString(v) {
			return fmt.Errorf("does not match %q", re)
		}
	}
	return nil
}

// TestParamsExamples checks each template's params.example, the file its
// README runs: every key a parameter, every value accepted, every required
// parameter given.
func TestParamsExamples(t *testing.T) {
	for _, name := range templateNames(t) {
		t.Run(name, func(t *testing.T) {
			m := load(t, name)
			values := readParams(t, filepath.Join(name, "params.example"))
			for _, p := range m.Parameters {
				v, ok := values[p.Name]
				if !ok {
					if !p.IsOptional {
						t.Errorf("required parameter %q is missing", p.Name)
					}
					continue
				}
				delete(values, p.Name)
				if err := matchAll(p, v); err != nil {
					t.Errorf("%s=%s: %v", p.Name, v, err)
				}
			}
			for k := range values {
				t.Errorf("%s is not a parameter", k)
			}
		})
	}
}

func readParams(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", path, line)
		}
		values[k] = v
	}
	return values
}

// TestREADMEs checks that the generated files (each README's parameter
// table, each Dockerfile) are up to date and that each README's build and
// run commands are the ones the scripts print.
func TestREADMEs(t *testing.T) {
	stale, err := gen.Sync(".", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range stale {
		t.Errorf("%s is out of date: run go generate ./templates", path)
	}
	for _, name := range templateNames(t) {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(name, metadata.READMEName))
			if err != nil {
				t.Fatal(err)
			}
			readme := continuation.ReplaceAllString(string(data), " ")
			commands := script(t, 0, "build-template.sh", "--print-only", "--project", "my-project", "--bucket", "my-bucket", "--tag", "v1", name) +
				script(t, 0, "run-template.sh", "--print-only", "--project", "my-project", "--bucket", "my-bucket",
					"--job-name", name+"-1", name, filepath.Join("templates", name, "params.example"))
			for line := range strings.Lines(commands) {
				if line = strings.TrimSpace(line); !strings.Contains(readme, line) {
					t.Errorf("the README does not show the command the scripts run:\n%s", line)
				}
			}
		})
	}
}

// continuation is a shell line continuation and the next line's indent.
var continuation = regexp.MustCompile(` *\\\n\s*`)

// script runs scripts/NAME with args from the repository root and returns
// its standard output, failing t unless it exits with status want.
func script(t *testing.T, want int, name string, args ...string) string {
	t.Helper()
	out, errOut, status := runScript(t, name, args...)
	if status != want {
		t.Fatalf("scripts/%s %s: exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), status, want, out, errOut)
	}
	return out
}

func runScript(t *testing.T, name string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join("scripts", name)}, args...)...)
	cmd.Dir = root
	// No cloud settings from the environment of whoever runs the test.
	cmd.Env = append(os.Environ(), "PROJECT=", "GOOGLE_CLOUD_PROJECT=", "BUCKET=", "REGION=", "REPOSITORY=")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		status = exit.ExitCode()
	default:
		t.Fatalf("scripts/%s: %v", name, err)
	}
	return o.String(), e.String(), status
}

// TestDockerfiles checks each template's Dockerfile: a Go builder at least
// as new as go.mod's go line building the pipeline, the launcher base image
// at a pinned dated tag (the same for every template), the binary where
// FLEX_TEMPLATE_GO_BINARY says.
func TestDockerfiles(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if goLine == nil {
		t.Fatal("go.mod has no go line")
	}
	builderRE := regexp.MustCompile(`(?m)^FROM (--platform=\S+ )?golang:([0-9.]+)-\S+ AS builder$`)
	launcherRE := regexp.MustCompile(`(?m)^FROM (--platform=\S+ )?gcr\.io/dataflow-templates-base/go-template-launcher-base:(\S+)$`)
	tags := map[string]string{}
	for _, name := range templateNames(t) {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(name, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			df := string(data)
			if m := builderRE.FindStringSubmatch(df); m == nil {
				t.Error("no golang builder stage (FROM golang:VERSION-... AS builder)")
			} else if versionLess(m[2], string(goLine[1])) {
				t.Errorf("builder golang:%s is older than go.mod's go %s", m[2], goLine[1])
			}
			bin := "/template/" + name
			for _, line := range []string{
				"RUN CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -o " + bin + " ./pipelines/" + name,
				"COPY --from=builder " + bin + " " + bin,
				"COPY templates/" + name + "/files/ /template/files/",
				"ENV " + gen.LauncherEnv + "=" + bin,
			} {
				if !slices.Contains(strings.Split(df, "\n"), line) {
					t.Errorf("no line %q", line)
				}
			}
			m := launcherRE.FindStringSubmatch(df)
			if m == nil {
				t.Fatal("no FROM gcr.io/dataflow-templates-base/go-template-launcher-base:TAG")
			}
			if !regexp.MustCompile(`^[0-9]{8}_RC[0-9]{2}$`).MatchString(m[2]) {
				t.Errorf("launcher tag %q is not a pinned dated tag such as 20260122_RC00", m[2])
			}
			tags[m[2]] = name
			if _, err := os.Stat(filepath.Join(name, "files", "README.md")); err != nil {
				t.Errorf("the folder the image copies files from: %v", err)
			}
		})
	}
	if len(tags) > 1 {
		t.Errorf("the templates use different launcher tags %v: update them together", tags)
	}
}

// versionLess compares dotted version numbers.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}
