package gen

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mqttbeam/mqttbeam/templates/internal/metadata"
)

const valid = `{"name": "t", "description": "d", "streaming": true, "supportsAtLeastOnce": true,
  "parameters": [{"name": "broker", "label": "Broker", "helpText": "URL", "paramType": "TEXT"}]}`

func TestSync(t *testing.T) {
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "demo")
	if err := os.Mkdir(tmpl, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(tmpl, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(metadata.FileName, valid)
	readme := "# demo\n\n" + metadata.BeginTable + "\nold table\n" + metadata.EndTable + "\n\nmore text\n"
	write(metadata.READMEName, readme)
	readmePath, dockerfilePath := filepath.Join(tmpl, metadata.READMEName), filepath.Join(tmpl, "Dockerfile")

	stale, err := Sync(dir, false)
	slices.Sort(stale)
	if err != nil || !slices.Equal(stale, []string{dockerfilePath, readmePath}) {
		t.Fatalf("Sync(check): stale %v, error %v; want the README and the missing Dockerfile", stale, err)
	}
	if got, _ := os.ReadFile(readmePath); string(got) != readme {
		t.Fatal("Sync without write changed the README")
	}
	if _, err := Sync(dir, true); err != nil {
		t.Fatalf("Sync(write): %v", err)
	}
	got, _ := os.ReadFile(readmePath)
	want := "# demo\n\n" + metadata.BeginTable + "\n| Parameter | Required | Type | Description |\n|---|---|---|---|\n" +
		"| `broker` | yes | TEXT | **Broker.** URL |\n" + metadata.EndTable + "\n\nmore text\n"
	if string(got) != want {
		t.Fatalf("README after Sync:\n%s\nwant:\n%s", got, want)
	}
	df, _ := os.ReadFile(dockerfilePath)
	for _, line := range []string{"ENV FLEX_TEMPLATE_GO_BINARY=/template/demo", "COPY templates/demo/files/ /template/files/"} {
		if !strings.Contains(string(df), "\n"+line+"\n") {
			t.Errorf("the Dockerfile has no line %q:\n%s", line, df)
		}
	}
	if stale, err := Sync(dir, false); err != nil || len(stale) != 0 {
		t.Fatalf("Sync after writing: stale %v, error %v; want none", stale, err)
	}

	write(metadata.READMEName, "# demo without markers\n")
	if _, err := Sync(dir, false); err == nil || !strings.Contains(err.Error(), "BEGIN PARAMETERS") {
		t.Fatalf("Sync of a README without markers: got %v, want an error naming the marker", err)
	}
}
