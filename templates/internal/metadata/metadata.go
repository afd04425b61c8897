// Package metadata reads the metadata.json of a Dataflow flex template, in
// Google's format (the Dataflow API's TemplateMetadata), checks it, and
// renders its parameter table for the template's README.md, where the table
// sits between two marker lines, BeginTable and EndTable.
package metadata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	dataflow "google.golang.org/api/dataflow/v1b3"
)

// Template is a flex template's metadata.json, as the Dataflow API defines it.
type Template = dataflow.TemplateMetadata

// Parameter is one parameter of a Template.
type Parameter = dataflow.ParameterMetadata

// FileName is the name of a template's metadata file in its folder.
const FileName = "metadata.json"

// READMEName is the name of a template's README in its folder.
const READMEName = "README.md"

// The marker lines around the generated parameter table of a README.
const (
	BeginTable = "<!-- BEGIN PARAMETERS: generated from metadata.json by `go generate ./templates`; do not edit -->"
	EndTable   = "<!-- END PARAMETERS -->"
)

// ParamTypes are the parameter types the templates may use: the Dataflow
// API's ParameterType values that suit a streaming job's parameters.
var ParamTypes = []string{"TEXT", "BIGQUERY_TABLE", "PUBSUB_TOPIC", "PUBSUB_SUBSCRIPTION",
	"GCS_READ_FILE", "GCS_READ_FOLDER", "GCS_WRITE_FOLDER", "BOOLEAN", "NUMBER"}

// nameRE is a parameter's name: a snake_case flag name.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// nonPortable finds regular expression syntax that is not POSIX ERE, or that
// Dataflow's (Java) validation reads differently: Perl classes, bracketed
// character classes such as [[:digit:]], and groups with flags.
var nonPortable = regexp.MustCompile(`\\[dDwWsSbBpP]|\[\[:|\(\?`)

// Parse decodes metadata.json and checks it (see Validate). Unknown fields
// are errors, so that a misspelt field is not silently ignored.
func Parse(data []byte) (*Template, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var t Template
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("decoding template metadata: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decoding template metadata: data after the JSON object")
	}
	if err := Validate(&t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Load reads and parses the metadata.json at path.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading template metadata: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Validate checks what Dataflow requires of a streaming template's metadata
// and what this project adds: a name and description; streaming with
// at-least-once support; parameters with unique snake_case names, a label,
// help text and a known type; regexes anchored (^...$), valid POSIX ERE and
// free of syntax Dataflow reads differently.
func Validate(t *Template) error {
	var errs []error
	if t.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if t.Description == "" {
		errs = append(errs, errors.New("description is empty"))
	}
	if !t.Streaming {
		errs = append(errs, errors.New("streaming is not true"))
	}
	if !t.SupportsAtLeastOnce {
		errs = append(errs, errors.New("supportsAtLeastOnce is not true"))
	}
	if len(t.Parameters) == 0 {
		errs = append(errs, errors.New("parameters is empty"))
	}
	seen := map[string]bool{}
	for i, p := range t.Parameters {
		if p == nil {
			errs = append(errs, fmt.Errorf("parameters[%d] is null", i))
			continue
		}
		if seen[p.Name] {
			errs = append(errs, fmt.Errorf("parameter %q: repeated", p.Name))
		}
		seen[p.Name] = true
		if err := validateParameter(p); err != nil {
			errs = append(errs, fmt.Errorf("parameter %q: %w", p.Name, err))
		}
	}
	return errors.Join(errs...)
}

func validateParameter(p *Parameter) error {
	var errs []error
	if !nameRE.MatchString(p.Name) {
		errs = append(errs, errors.New("name is not a snake_case flag name"))
	}
	if p.Label == "" {
		errs = append(errs, errors.New("label is empty"))
	}
	if p.HelpText == "" {
		errs = append(errs, errors.New("helpText is empty"))
	}
	if !slices.Contains(ParamTypes, p.ParamType) {
		errs = append(errs, fmt.Errorf("paramType %q is not one of %s", p.ParamType, strings.Join(ParamTypes, ", ")))
	}
	for _, re := range p.Regexes {
		if _, err := CompileRegex(re); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CompileRegex compiles a parameter's regex as POSIX ERE (leftmost-longest,
// as Dataflow matches the whole value) after checking that it is anchored
// and uses no syntax outside what POSIX ERE and Java share.
func CompileRegex(re string) (*regexp.Regexp, error) {
	if !strings.HasPrefix(re, "^") || !strings.HasSuffix(re, "$") {
		return nil, fmt.Errorf("regex %q is not anchored with ^...$", re)
	}
	if m := nonPortable.FindString(re); m != "" {
		return nil, fmt.Errorf("regex %q uses %q, which is not portable POSIX ERE (spell out the characters, e.g. [0-9])", re, m)
	}
	c, err := regexp.CompilePOSIX(re)
	if err != nil {
		return nil, fmt.Errorf("regex %q is not POSIX ERE: %w", re, err)
	}
	return c, nil
}

// Table renders the parameters as a Markdown table: name, whether it is
// required, type and help text, in the metadata's order.
func Table(t *Template) string {
	var b strings.Builder
	b.WriteString("| Parameter | Required | Type | Description |\n|---|---|---|---|\n")
	for _, p := range t.Parameters {
		required := "yes"
		if p.IsOptional {
			required = "no"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | **%s.** %s |\n", p.Name, required, p.ParamType,
			cell(strings.TrimSuffix(p.Label, ".")), cell(p.HelpText))
	}
	return b.String()
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// Splice returns readme with the text between the BeginTable and EndTable
// lines replaced by table.
func Splice(readme []byte, table string) ([]byte, error) {
	s := string(readme)
	begin := strings.Index(s, BeginTable+"\n")
	end := strings.Index(s, EndTable)
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("the README has no %q line followed by a %q line", BeginTable, EndTable)
	}
	start := begin + len(BeginTable) + 1
	return []byte(s[:start] + table + s[end:]), nil
}
