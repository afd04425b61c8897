package bigqueryio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// tableRef is a parsed PROJECT:DATASET.TABLE.
type tableRef struct{ Project, Dataset, Table string }

func (t tableRef) String() string { return t.Project + ":" + t.Dataset + "." + t.Table }

// tableRE matches PROJECT:DATASET.TABLE; a domain-scoped project
// ("example.com:proj") keeps its colon.
var tableRE = regexp.MustCompile(`^([a-z0-9][a-z0-9.:-]*[a-z0-9]|[a-z0-9]):([A-Za-z0-9_]+)\.([\p{L}\p{M}\p{N}\p{Pc}\p{Pd}$-]+)$`)

// parseTable parses "PROJECT:DATASET.TABLE".
func parseTable(s string) (tableRef, error) {
	m := tableRE.FindStringSubmatch(s)
	if m == nil {
		return tableRef{}, fmt.Errorf("table %q must be PROJECT:DATASET.TABLE", s)
	}
	return tableRef{m[1], m[2], m[3]}, nil
}

// clients is what one worker shares between the DoFn instances that talk to
// the same endpoint and project: the only global state of the package.
type clients struct {
	bq     *bigquery.Client
	writer *managedwriter.Client
	refs   int
}

var (
	clientsMu sync.Mutex
	clientMap = map[string]*clients{}
)

func clientKey(cfg config, project string) string {
	return strings.Join([]string{cfg.RESTEndpoint, cfg.GRPCEndpoint, project}, "|")
}

// acquireClients returns the worker's clients for project, creating them on
// first use. Each call must be paired with releaseClients.
func acquireClients(ctx context.Context, cfg config, project string) (*clients, error) {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	k := clientKey(cfg, project)
	if c, ok := clientMap[k]; ok {
		c.refs++
		return c, nil
	}
	var restOpts, grpcOpts []option.ClientOption
	if cfg.Insecure {
		restOpts = []option.ClientOption{option.WithEndpoint(cfg.RESTEndpoint), option.WithoutAuthentication()}
		grpcOpts = []option.ClientOption{option.WithEndpoint(cfg.GRPCEndpoint), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
	}
	// The clients outlive the bundle that creates them.
	bg := context.WithoutCancel(ctx)
	bq, err := bigquery.NewClient(bg, project, restOpts...)
	if err != nil {
		return nil, fmt.Errorf("bigqueryio: BigQuery client: %w", err)
	}
	w, err := managedwriter.NewClient(bg, project, grpcOpts...)
	if err != nil {
		bq.Close()
		return nil, fmt.Errorf("bigqueryio: Storage Write client: %w", err)
	}
	c := &clients{bq: bq, writer: w, refs: 1}
	clientMap[k] = c
	return c, nil
}

// releaseClients drops one reference and closes the clients with the last.
func releaseClients(cfg config, project string) error {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	k := clientKey(cfg, project)
	c, ok := clientMap[k]
	if !ok {
		return nil
	}
	if c.refs--; c.refs > 0 {
		return nil
	}
	delete(clientMap, k)
	return errors.Join(c.writer.Close(), c.bq.Close())
}

func isNotFound(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusNotFound
}

// ensureTable checks that the table exists with a schema that accepts the
// rows, creating it (and its dataset) when allowed.
func ensureTable(ctx context.Context, c *bigquery.Client, ref tableRef, schema bigquery.Schema, cfg config) error {
	t := c.DatasetInProject(ref.Project, ref.Dataset).Table(ref.Table)
	md, err := t.Metadata(ctx)
	if err == nil {
		if err := compareSchemas(md.Schema, schema, ""); err != nil {
			return fmt.Errorf("bigqueryio: table %s does not match the rows' schema: %w", ref, err)
		}
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("bigqueryio: get table %s: %w", ref, err)
	}
	if !cfg.CreateIfMissing {
		return fmt.Errorf("bigqueryio: table %s does not exist (use CreateIfMissing to create it)", ref)
	}
	ds := c.DatasetInProject(ref.Project, ref.Dataset)
	if _, err := ds.Metadata(ctx); isNotFound(err) {
		if err := ds.Create(ctx, nil); err != nil && !isConflict(err) {
			return fmt.Errorf("bigqueryio: create dataset %s:%s: %w", ref.Project, ref.Dataset, err)
		}
	}
	tm := &bigquery.TableMetadata{Schema: schema}
	if cfg.PartitionField != "" {
		tm.TimePartitioning = &bigquery.TimePartitioning{Type: bigquery.DayPartitioningType, Field: cfg.PartitionField}
	}
	if len(cfg.ClusterFields) > 0 {
		tm.Clustering = &bigquery.Clustering{Fields: cfg.ClusterFields}
	}
	if err := t.Create(ctx, tm); err != nil && !isConflict(err) {
		return fmt.Errorf("bigqueryio: create table %s: %w", ref, err)
	}
	return nil
}

func isConflict(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusConflict
}

// compareSchemas reports the first field where the table cannot take the
// rows: a column the rows have and the table lacks, a different type or
// repetition, or a REQUIRED table column the rows do not fill.
func compareSchemas(table, rows bigquery.Schema, prefix string) error {
	byName := make(map[string]*bigquery.FieldSchema, len(table))
	for _, f := range table {
		byName[strings.ToLower(f.Name)] = f
	}
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		name := prefix + r.Name
		seen[strings.ToLower(r.Name)] = true
		t, ok := byName[strings.ToLower(r.Name)]
		switch {
		case !ok:
			return fmt.Errorf("field %q: the table has no such column", name)
		case t.Type != r.Type:
			return fmt.Errorf("field %q: the table has type %s, the rows %s", name, t.Type, r.Type)
		case t.Repeated != r.Repeated:
			return fmt.Errorf("field %q: repeated in one schema only (table %v, rows %v)", name, t.Repeated, r.Repeated)
		case t.Required && !r.Required:
			return fmt.Errorf("field %q: REQUIRED in the table but NULLABLE in the rows", name)
		}
		if t.Type == bigquery.RecordFieldType {
			if err := compareSchemas(t.Schema, r.Schema, name+"."); err != nil {
				return err
			}
		}
	}
	for _, t := range table {
		if t.Required && !seen[strings.ToLower(t.Name)] {
			return fmt.Errorf("field %q: REQUIRED in the table but missing from the rows", prefix+t.Name)
		}
	}
	return nil
}
