// Package schemacheck checks the bodies the GitHub stand-in
// (bot/githubapp/githubtest) receives and sends against the schemas of GitHub's
// own OpenAPI description (its testdata/openapi-subset.json), with
// github.com/santhosh-tekuri/jsonschema. It is for tests only: a test package
// that starts a stand-in imports it blank, which registers its Validator,
//
//	import _ "github.com/stagehand-dev/stagehand/bot/githubapp/githubtest/schemacheck"
//
// and githubtest.New fails a test whose package forgot. The shipped binary
// (whose playground serves the stand-in) links neither it nor the validator.
package schemacheck

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

func init() { githubtest.Register(checker{}) }

// checker is the githubtest.Validator of this package.
type checker struct{}

func (checker) CheckRequest(op, contentType string, body []byte) error {
	sp, err := loadSpec()
	if err != nil {
		return err
	}
	return sp.validateRequest(op, contentType, body)
}

func (checker) CheckResponse(op string, status int, contentType string, body []byte) error {
	sp, err := loadSpec()
	if err != nil {
		return err
	}
	return sp.validateResponse(op, status, contentType, body)
}

// spec holds the operations of openapi-subset.json as written (numbers kept
// exact, as jsonschema reads them) and the schemas compiled from them.
type spec struct {
	ops map[string]map[string]any // operation key -> the operation object

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema // compiled lazily, keyed by operation, status and media type
}

// loadSpec parses the stand-in's OpenAPI document once per process.
var loadSpec = sync.OnceValues(func() (*spec, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(githubtest.OpenAPI()))
	if err != nil {
		return nil, fmt.Errorf("openapi-subset.json: %w", err)
	}
	paths, _ := doc.(map[string]any)["paths"].(map[string]any)
	sp := &spec{ops: map[string]map[string]any{}, schemas: map[string]*jsonschema.Schema{}}
	for template, item := range paths {
		item, _ := item.(map[string]any)
		for method, raw := range item {
			if op, ok := raw.(map[string]any); ok && method != "parameters" {
				sp.ops[strings.ToUpper(method)+" "+template] = op
			}
		}
	}
	return sp, nil
})

// operation returns the operation object of key.
func (sp *spec) operation(key string) (map[string]any, error) {
	op := sp.ops[key]
	if op == nil {
		return nil, fmt.Errorf("%s: %w", key, ErrUnknownOperation)
	}
	return op, nil
}

// ErrUnknownOperation is returned by ValidateRequest and ValidateResponse when no
// operation of openapi-subset.json matches the method and path.
var ErrUnknownOperation = errors.New("no operation in openapi-subset.json matches")

// ValidateRequest checks a request body against the requestBody schema of the
// operation that method and path match. path is either a concrete request path
// ("/repos/o/r/check-runs") or the template itself ("/repos/{owner}/{repo}/check-runs").
// An empty body is valid only when the operation's body is optional.
func ValidateRequest(method, path string, body []byte) error {
	op := githubtest.MatchOperation(method, path)
	if op == "" {
		return fmt.Errorf("%s %s: %w", method, path, ErrUnknownOperation)
	}
	return checker{}.CheckRequest(op, "application/json", body)
}

// ValidateResponse checks a response body against the schema the operation
// documents for that status and content type (empty means application/json).
func ValidateResponse(method, path string, status int, contentType string, body []byte) error {
	op := githubtest.MatchOperation(method, path)
	if op == "" {
		return fmt.Errorf("%s %s: %w", method, path, ErrUnknownOperation)
	}
	if contentType == "" {
		contentType = "application/json"
	}
	return checker{}.CheckResponse(op, status, contentType, body)
}

func (sp *spec) validateRequest(key, contentType string, body []byte) error {
	op, err := sp.operation(key)
	if err != nil {
		return err
	}
	rb, _ := op["requestBody"].(map[string]any)
	if rb == nil {
		if len(bytes.TrimSpace(body)) > 0 {
			return fmt.Errorf("%s: request has a body but the operation takes none", key)
		}
		return nil
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if rb["required"] == true {
			return fmt.Errorf("%s: request body is required", key)
		}
		return nil
	}
	mt := mediaType(contentType)
	content, _ := rb["content"].(map[string]any)
	media, _ := content[mt].(map[string]any)
	if media == nil {
		return fmt.Errorf("%s: request Content-Type %q is not one of the documented %v", key, contentType, keys(content))
	}
	sch, err := sp.compile(key+" request "+mt, media["schema"])
	if err != nil {
		return err
	}
	if err := validateJSON(sch, body); err != nil {
		return fmt.Errorf("%s: request body: %w", key, err)
	}
	return nil
}

// errUndocumentedStatus is returned when the operation documents no such status.
var errUndocumentedStatus = errors.New("status not documented for this operation")

func (sp *spec) validateResponse(key string, status int, contentType string, body []byte) error {
	op, err := sp.operation(key)
	if err != nil {
		return err
	}
	responses, _ := op["responses"].(map[string]any)
	resp, _ := responses[strconv.Itoa(status)].(map[string]any)
	if resp == nil {
		resp, _ = responses["default"].(map[string]any)
	}
	if resp == nil {
		return fmt.Errorf("%s: response %d: %w (documented: %v)", key, status, errUndocumentedStatus, keys(responses))
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(bytes.TrimSpace(body)) > 0 {
			return fmt.Errorf("%s: response %d documents no body but one was sent", key, status)
		}
		return nil
	}
	mt := mediaType(contentType)
	media, _ := content[mt].(map[string]any)
	if media == nil {
		return fmt.Errorf("%s: response %d Content-Type %q is not one of the documented %v", key, status, contentType, keys(content))
	}
	sch, err := sp.compile(fmt.Sprintf("%s response %d %s", key, status, mt), media["schema"])
	if err != nil {
		return err
	}
	if err := validateJSON(sch, body); err != nil {
		return fmt.Errorf("%s: response %d: %w", key, status, err)
	}
	return nil
}

func validateJSON(sch *jsonschema.Schema, body []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	return sch.Validate(inst)
}

// compile converts an OpenAPI 3.0 schema to JSON Schema and compiles it, once per key.
func (sp *spec) compile(key string, oas any) (*jsonschema.Schema, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sch, ok := sp.schemas[key]; ok {
		return sch, nil
	}
	if oas == nil {
		return nil, fmt.Errorf("%s: no schema in the document", key)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	loc := fmt.Sprintf("https://schemacheck.invalid/schemas/%d.json", len(sp.schemas))
	if err := c.AddResource(loc, toJSONSchema(oas)); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("%s: compile schema: %w", key, err)
	}
	sp.schemas[key] = sch
	return sch, nil
}

// toJSONSchema turns an OpenAPI 3.0 schema object into a JSON Schema (2020-12)
// one: `nullable: true` becomes a type list with "null" (and null joins any
// enum), or an anyOf with {"type":"null"} when the schema has no type;
// boolean exclusiveMinimum/Maximum become numbers; discriminator, example(s),
// xml, externalDocs and x-* extensions are dropped. Property names are kept as
// they are, whatever they look like.
func toJSONSchema(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, val := range m {
		switch {
		case strings.HasPrefix(k, "x-"), k == "discriminator", k == "example", k == "examples",
			k == "xml", k == "externalDocs", k == "nullable":
		case k == "properties" || k == "patternProperties":
			props, _ := val.(map[string]any)
			conv := make(map[string]any, len(props))
			for name, s := range props {
				conv[name] = toJSONSchema(s)
			}
			out[k] = conv
		case k == "items" || k == "additionalProperties" || k == "not":
			out[k] = toJSONSchema(val)
		case k == "allOf" || k == "anyOf" || k == "oneOf":
			list, _ := val.([]any)
			conv := make([]any, len(list))
			for i, s := range list {
				conv[i] = toJSONSchema(s)
			}
			out[k] = conv
		default:
			out[k] = val
		}
	}
	for _, pair := range [][2]string{{"exclusiveMinimum", "minimum"}, {"exclusiveMaximum", "maximum"}} {
		if b, ok := out[pair[0]].(bool); ok {
			delete(out, pair[0])
			if b {
				out[pair[0]] = out[pair[1]]
				delete(out, pair[1])
			}
		}
	}
	if m["nullable"] != true {
		return out
	}
	switch t := out["type"].(type) {
	case string:
		out["type"] = []any{t, "null"}
		if enum, ok := out["enum"].([]any); ok && !containsNil(enum) {
			out["enum"] = append(append([]any{}, enum...), nil)
		}
		return out
	case nil:
		return map[string]any{"anyOf": []any{out, map[string]any{"type": "null"}}}
	default:
		return out
	}
}

func containsNil(list []any) bool {
	for _, v := range list {
		if v == nil {
			return true
		}
	}
	return false
}

func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return contentType
	}
	return mt
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
