// Package gen writes the files of the flex templates that derive from one
// source, so that they cannot drift apart: each template's Dockerfile, from
// one pattern (Dockerfile.tmpl: the Go builder, the pinned launcher image,
// the layout), and the parameter table of its README.md, from its
// metadata.json. `go generate ./templates` runs it; the templates' test fails
// when a generated file is out of date.
package gen

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"text/template"

	"github.com/mqttbeam/mqttbeam/templates/internal/metadata"
)

// LauncherEnv is the variable a flex template's image sets to the path of
// the Go pipeline binary (Google's Go launcher reads it); the pipelines
// detect a template launch by it.
const LauncherEnv = "FLEX_TEMPLATE_GO_BINARY"

//go:embed Dockerfile.tmpl
var dockerfileText string

var dockerfileTmpl = template.Must(template.New("Dockerfile").Parse(dockerfileText))

// Dockerfile returns the Dockerfile of the template of pipeline name: it
// builds ./pipelines/NAME into /template/NAME on the launcher image.
func Dockerfile(name string) ([]byte, error) {
	var b bytes.Buffer
	data := struct{ Name, LauncherEnv string }{name, LauncherEnv}
	if err := dockerfileTmpl.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("rendering the Dockerfile of %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// Sync brings the generated files of every template under dir (each folder
// with a metadata.json) up to date. With write, it rewrites the files that
// are out of date; either way it returns their paths. An invalid metadata
// file or a README without the table's markers is an error.
func Sync(dir string, write bool) (stale []string, err error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*", metadata.FileName))
	if err != nil {
		return nil, fmt.Errorf("finding templates: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no %s under %s", metadata.FileName, dir)
	}
	for _, path := range paths {
		files, err := generate(path)
		if err != nil {
			return stale, err
		}
		for file, want := range files {
			old, err := os.ReadFile(file)
			if err != nil && !os.IsNotExist(err) {
				return stale, fmt.Errorf("reading a generated file: %w", err)
			}
			if bytes.Equal(old, want) {
				continue
			}
			stale = append(stale, file)
			if write {
				if err := os.WriteFile(file, want, 0o644); err != nil {
					return stale, fmt.Errorf("writing a generated file: %w", err)
				}
			}
		}
	}
	return stale, nil
}

// generate returns the generated files of the template whose metadata.json
// is at path, by their paths.
func generate(path string) (map[string][]byte, error) {
	t, err := metadata.Load(path)
	if err != nil {
		return nil, err
	}
	tmplDir := filepath.Dir(path)
	readmePath := filepath.Join(tmplDir, metadata.READMEName)
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		return nil, fmt.Errorf("reading the README: %w", err)
	}
	if readme, err = metadata.Splice(readme, metadata.Table(t)); err != nil {
		return nil, fmt.Errorf("%s: %w", readmePath, err)
	}
	dockerfile, err := Dockerfile(filepath.Base(tmplDir))
	if err != nil {
		return nil, err
	}
	return map[string][]byte{readmePath: readme, filepath.Join(tmplDir, "Dockerfile"): dockerfile}, nil
}
