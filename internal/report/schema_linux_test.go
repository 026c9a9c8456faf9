package report_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/carrel-lib/carrel/internal/report"
)

// compileSchemas loads schema/*.schema.json under their $id and compiles
// the schema of each report, with formats (date-time) asserted.
func compileSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files, err := filepath.Glob(filepath.Join("schema", "*.schema.json"))
	if err != nil || len(files) != 4 {
		t.Fatalf("schema files: %v, %v; want common, review, processing, breach", files, err)
	}
	ids := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if id == "" {
			t.Fatalf("%s has no $id", f)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
		ids[strings.TrimSuffix(filepath.Base(f), ".schema.json")] = id
	}
	out := map[string]*jsonschema.Schema{}
	for _, kind := range []string{"review", "processing", "breach"} {
		s, err := c.Compile(ids[kind])
		if err != nil {
			t.Fatalf("compiling the %s schema: %v", kind, err)
		}
		out[kind] = s
	}
	return out
}

// TestJSONMatchesSchema: every report's JSON, in both languages, is valid
// under the schema committed in schema/, and the schema is strict enough
// to refuse a report missing its findings or carrying an unknown key.
func TestJSONMatchesSchema(t *testing.T) {
	schemas := compileSchemas(t)
	for name, rep := range goldenReports(t) {
		kind := strings.SplitN(name, ".", 2)[0]
		b, err := report.Render(rep, "json")
		if err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas[kind].Validate(inst); err != nil {
			t.Errorf("%s: the JSON does not match schema/%s.schema.json: %v", name, kind, err)
		}
		// The schema must be able to fail.
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for what, bad := range map[string]func(map[string]any){
			"without meta":    func(m map[string]any) { delete(m, "meta") },
			"with a new key":  func(m map[string]any) { m["booking_rows"] = []any{} },
			"with a bad time": func(m map[string]any) { m["meta"].(map[string]any)["made"] = "yesterday" },
		} {
			var c map[string]any
			json.Unmarshal(b, &c)
			bad(c)
			cb, _ := json.Marshal(c)
			ci, _ := jsonschema.UnmarshalJSON(bytes.NewReader(cb))
			if schemas[kind].Validate(ci) == nil {
				t.Errorf("%s %s: the schema accepts it", name, what)
			}
		}
		// What the goldens leave out, because it is off by default.
		if kind == "review" {
			var c map[string]any
			json.Unmarshal(b, &c)
			c["audit"].(map[string]any)["witness_keys_given"] = true
			cb, _ := json.Marshal(c)
			ci, _ := jsonschema.UnmarshalJSON(bytes.NewReader(cb))
			if err := schemas[kind].Validate(ci); err != nil {
				t.Errorf("%s with witness keys given off the PC: %v", name, err)
			}
			c["audit"].(map[string]any)["witness_keys_given"] = "yes"
			cb, _ = json.Marshal(c)
			ci, _ = jsonschema.UnmarshalJSON(bytes.NewReader(cb))
			if schemas[kind].Validate(ci) == nil {
				t.Errorf("%s with witness_keys_given a string: the schema accepts it", name)
			}
		}
	}
}
