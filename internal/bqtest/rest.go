package bqtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	bq "google.golang.org/api/bigquery/v2"
)

// apiError is an error with the HTTP status and reason BigQuery would give.
type apiError struct {
	Code    int
	Reason  string
	Message string
}

func (e *apiError) Error() string { return e.Message }

// failureCodes maps the injectable HTTP codes to their reasons.
var failureCodes = map[int]string{
	http.StatusTooManyRequests:     "rateLimitExceeded",
	http.StatusInternalServerError: "internalError",
	http.StatusServiceUnavailable:  "backendError",
	http.StatusGatewayTimeout:      "timeout",
}

func injected(code int) *apiError {
	return &apiError{code, failureCodes[code], fmt.Sprintf("bqtest: injected failure (HTTP %d %s)", code, http.StatusText(code))}
}

const restPrefix = "/bigquery/v2/projects/{p}/datasets"

func (s *Server) restHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+restPrefix+"/{d}", s.getDataset)
	mux.HandleFunc("POST "+restPrefix, s.insertDataset)
	mux.HandleFunc("GET "+restPrefix+"/{d}/tables/{t}", s.getTable)
	mux.HandleFunc("POST "+restPrefix+"/{d}/tables", s.createTable)
	mux.HandleFunc("PATCH "+restPrefix+"/{d}/tables/{t}", s.patchTable)
	mux.HandleFunc("PUT "+restPrefix+"/{d}/tables/{t}", s.patchTable)
	mux.HandleFunc("POST "+restPrefix+"/{d}/tables/{t}/insertAll", s.insertAll)
	mux.HandleFunc("GET "+restPrefix+"/{d}/tables/{t}/data", s.listData)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{http.StatusNotImplemented, "notImplemented", "bqtest: not implemented: " + r.Method + " " + r.URL.Path})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client sees a truncated body
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{http.StatusInternalServerError, "internalError", err.Error()}
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(ae.Code)
	json.NewEncoder(w).Encode(map[string]any{ //nolint:errcheck // as above
		"error": map[string]any{
			"code":    ae.Code,
			"message": ae.Message,
			"errors":  []map[string]any{{"reason": ae.Reason, "message": ae.Message, "domain": "global"}},
		},
	})
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return &apiError{http.StatusBadRequest, "invalid", "Invalid JSON payload received: " + err.Error()}
	}
	return nil
}

func (s *Server) getDataset(w http.ResponseWriter, r *http.Request) {
	p, d := r.PathValue("p"), r.PathValue("d")
	s.mu.Lock()
	ds, ok := s.datasets[p+":"+d]
	s.mu.Unlock()
	if !ok {
		writeError(w, &apiError{http.StatusNotFound, "notFound", fmt.Sprintf("Not found: Dataset %s:%s", p, d)})
		return
	}
	writeJSON(w, ds)
}

func (s *Server) insertDataset(w http.ResponseWriter, r *http.Request) {
	var in bq.Dataset
	if err := decode(r, &in); err != nil {
		writeError(w, err)
		return
	}
	p := r.PathValue("p")
	if in.DatasetReference == nil || in.DatasetReference.DatasetId == "" {
		writeError(w, &apiError{http.StatusBadRequest, "invalid", "Required parameter is missing: datasetReference.datasetId"})
		return
	}
	loc := in.Location
	if loc == "" {
		loc = s.cfg.Location
	}
	ds := newDataset(p, in.DatasetReference.DatasetId, loc)
	s.mu.Lock()
	_, exists := s.datasets[ds.Id]
	if !exists {
		s.datasets[ds.Id] = ds
	}
	s.mu.Unlock()
	if exists {
		writeError(w, &apiError{http.StatusConflict, "duplicate", "Already Exists: Dataset " + ds.Id})
		return
	}
	writeJSON(w, ds)
}

func (s *Server) getTable(w http.ResponseWriter, r *http.Request) {
	respond(w)(s.Table(r.PathValue("p"), r.PathValue("d"), r.PathValue("t")))
}

// respond returns a function that writes a result or an error.
func respond(w http.ResponseWriter) func(v any, err error) {
	return func(v any, err error) {
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, v)
	}
}

func (s *Server) createTable(w http.ResponseWriter, r *http.Request) {
	var in bq.Table
	if err := decode(r, &in); err != nil {
		writeError(w, err)
		return
	}
	if in.TableReference == nil {
		in.TableReference = &bq.TableReference{}
	}
	in.TableReference.ProjectId, in.TableReference.DatasetId = r.PathValue("p"), r.PathValue("d")
	s.mu.Lock()
	err := s.insertTable(&in)
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	respond(w)(s.Table(in.TableReference.ProjectId, in.TableReference.DatasetId, in.TableReference.TableId))
}

// patchTable updates the description, labels, clustering and schema. A
// schema may only add NULLABLE or REPEATED fields and relax REQUIRED ones, as
// in BigQuery.
func (s *Server) patchTable(w http.ResponseWriter, r *http.Request) {
	var in bq.Table
	if err := decode(r, &in); err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTable(r.PathValue("p"), r.PathValue("d"), r.PathValue("t"))
	if err != nil {
		writeError(w, err)
		return
	}
	if in.Schema != nil {
		if err := checkSchemaUpdate(t.meta.Schema.Fields, in.Schema.Fields, ""); err != nil {
			writeError(w, &apiError{http.StatusBadRequest, "invalid", "Provided Schema does not match Table " + t.meta.Id + ". " + err.Error()})
			return
		}
		t.meta.Schema = in.Schema
	}
	if in.Description != "" {
		t.meta.Description = in.Description
	}
	if in.Labels != nil {
		t.meta.Labels = in.Labels
	}
	if in.Clustering != nil {
		t.meta.Clustering = in.Clustering
	}
	writeJSON(w, t.snapshot())
}

func checkSchemaUpdate(old, upd []*bq.TableFieldSchema, prefix string) error {
	byName := make(map[string]*bq.TableFieldSchema, len(upd))
	for _, f := range upd {
		byName[strings.ToLower(f.Name)] = f
	}
	for _, o := range old {
		n, ok := byName[strings.ToLower(o.Name)]
		switch {
		case !ok:
			return fmt.Errorf("Field %s%s is missing in new schema.", prefix, o.Name)
		case canonicalType(n.Type) != canonicalType(o.Type):
			return fmt.Errorf("Field %s%s has changed type from %s to %s.", prefix, o.Name, o.Type, n.Type)
		case mode(o) != mode(n) && !(mode(o) == "REQUIRED" && mode(n) == "NULLABLE"):
			return fmt.Errorf("Field %s%s has changed mode from %s to %s.", prefix, o.Name, mode(o), mode(n))
		}
		if err := checkSchemaUpdate(o.Fields, n.Fields, prefix+o.Name+"."); err != nil {
			return err
		}
		delete(byName, strings.ToLower(o.Name))
	}
	for _, n := range byName {
		if mode(n) == "REQUIRED" {
			return fmt.Errorf("Cannot add required field %s%s to an existing schema.", prefix, n.Name)
		}
	}
	return checkSchema(upd, prefix)
}

func mode(f *bq.TableFieldSchema) string {
	if f.Mode == "" {
		return "NULLABLE"
	}
	return strings.ToUpper(f.Mode)
}

func (s *Server) insertAll(w http.ResponseWriter, r *http.Request) {
	var in bq.TableDataInsertAllRequest
	if err := decode(r, &in); err != nil {
		writeError(w, err)
		return
	}
	s.count(func(st *Stats) { st.Inserts++ })
	if code := s.takeFailure(); code != 0 {
		writeError(w, injected(code))
		return
	}
	p, d, tb := r.PathValue("p"), r.PathValue("d"), r.PathValue("t")
	rows := make([]map[string]any, len(in.Rows))
	for i, row := range in.Rows {
		rows[i] = make(map[string]any, len(row.Json))
		for k, v := range row.Json {
			rows[i][k] = v
		}
	}
	err := s.write(p, d, tb, rows, encJSON)
	var rowErrs RowErrors
	if !errors.As(err, &rowErrs) {
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, &bq.TableDataInsertAllResponse{Kind: "bigquery#tableDataInsertAllResponse"})
		return
	}
	resp := &bq.TableDataInsertAllResponse{Kind: "bigquery#tableDataInsertAllResponse"}
	bad := make(map[int]string, len(rowErrs))
	for _, re := range rowErrs {
		bad[re.Index] = re.Reason
	}
	var good []map[string]any
	for i := range rows {
		if reason, ok := bad[i]; ok {
			resp.InsertErrors = append(resp.InsertErrors, &bq.TableDataInsertAllResponseInsertErrors{
				Index: int64(i), Errors: []*bq.ErrorProto{{Reason: "invalid", Message: reason}}})
			continue
		}
		if in.SkipInvalidRows {
			good = append(good, rows[i])
			continue
		}
		resp.InsertErrors = append(resp.InsertErrors, &bq.TableDataInsertAllResponseInsertErrors{
			Index: int64(i), Errors: []*bq.ErrorProto{{Reason: "stopped"}}})
	}
	if len(good) > 0 {
		if err := s.write(p, d, tb, good, encJSON); err != nil {
			writeError(w, err)
			return
		}
	}
	writeJSON(w, resp)
}

func (s *Server) listData(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, _ := strconv.Atoi(q.Get("startIndex"))
	if tok := q.Get("pageToken"); tok != "" {
		start, _ = strconv.Atoi(tok)
	}
	limit, err := strconv.Atoi(q.Get("maxResults"))
	if err != nil || limit <= 0 {
		limit = 1000
	}
	s.mu.Lock()
	t, err := s.lookupTable(r.PathValue("p"), r.PathValue("d"), r.PathValue("t"))
	if err != nil {
		s.mu.Unlock()
		writeError(w, err)
		return
	}
	fields, all := t.meta.Schema.Fields, t.rows
	s.mu.Unlock()
	start = min(max(start, 0), len(all))
	end := min(start+limit, len(all))
	out := map[string]any{"kind": "bigquery#tableDataList", "totalRows": strconv.Itoa(len(all))}
	rows := make([]any, 0, end-start)
	for _, row := range all[start:end] {
		rows = append(rows, tableRow(fields, row))
	}
	out["rows"] = rows
	if end < len(all) {
		out["pageToken"] = strconv.Itoa(end)
	}
	writeJSON(w, out)
}
