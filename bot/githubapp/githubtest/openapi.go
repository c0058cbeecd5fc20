package githubtest

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// operation is one method + path template of openapi-subset.json.
type operation struct {
	key      string // "GET /repos/{owner}/{repo}/contents/{path}"
	method   string
	template string
	segs     []string        // template split on "/", without the leading ""
	multi    map[string]bool // path parameters marked x-multi-segment
	docURL   string          // externalDocs.url, used in error bodies
	raw      map[string]any  // the operation object as written in the document
	literals int             // number of literal segments, to prefer the most specific match
	// outsideSubset marks an endpoint the stand-in serves although
	// openapi-subset.json does not describe it (outsideSubsetRoutes):
	// neither its requests nor its responses are schema-checked.
	outsideSubset bool
}

type spec struct {
	ops   []*operation
	byKey map[string]*operation

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema // compiled lazily, keyed by schemaKey
}

// loadSpec parses the embedded OpenAPI document once per process.
var loadSpec = sync.OnceValues(func() (*spec, error) {
	data, err := fixtures.ReadFile("testdata/openapi-subset.json")
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("openapi-subset.json: %w", err)
	}
	paths, _ := doc.(map[string]any)["paths"].(map[string]any)
	sp := &spec{byKey: map[string]*operation{}, schemas: map[string]*jsonschema.Schema{}}
	for template, item := range paths {
		item, _ := item.(map[string]any)
		pathParams, _ := item["parameters"].([]any)
		for method, raw := range item {
			op, ok := raw.(map[string]any)
			if !ok || method == "parameters" {
				continue
			}
			o := &operation{
				method:   strings.ToUpper(method),
				template: template,
				segs:     strings.Split(strings.TrimPrefix(template, "/"), "/"),
				multi:    map[string]bool{},
				raw:      op,
			}
			o.key = o.method + " " + template
			opParams, _ := op["parameters"].([]any)
			for _, p := range append(append([]any{}, pathParams...), opParams...) {
				p, _ := p.(map[string]any)
				if p["in"] == "path" && p["x-multi-segment"] == true {
					o.multi[p["name"].(string)] = true
				}
			}
			if docs, ok := op["externalDocs"].(map[string]any); ok {
				o.docURL, _ = docs["url"].(string)
			}
			for _, s := range o.segs {
				if !isParam(s) {
					o.literals++
				}
			}
			sp.ops = append(sp.ops, o)
			sp.byKey[o.key] = o
		}
	}
	sort.Slice(sp.ops, func(i, j int) bool { return sp.ops[i].key < sp.ops[j].key })
	return sp, nil
})

func mustSpec() *spec {
	sp, err := loadSpec()
	if err != nil {
		panic("githubtest: " + err.Error())
	}
	return sp
}

func isParam(seg string) bool { return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") }

// match finds the operation for method and an escaped request path ("/repos/o/r/contents/a/b").
// It returns the operation and its decoded path parameters, or nil.
func (sp *spec) match(method, escapedPath string) (*operation, map[string]string) {
	segs := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	var best *operation
	var bestParams map[string]string
	for _, op := range sp.ops {
		if op.method != method || (best != nil && op.literals <= best.literals) {
			continue
		}
		params := map[string]string{}
		if matchSegs(op, op.segs, segs, params) {
			best, bestParams = op, params
		}
	}
	return best, bestParams
}

// matchSegs matches template segments against path segments; a parameter marked
// x-multi-segment takes one or more segments (backtracking until the rest matches).
func matchSegs(op *operation, tsegs, psegs []string, params map[string]string) bool {
	if len(tsegs) == 0 {
		return len(psegs) == 0
	}
	if len(psegs) == 0 {
		return false
	}
	t := tsegs[0]
	if !isParam(t) {
		seg, err := url.PathUnescape(psegs[0])
		return err == nil && seg == t && matchSegs(op, tsegs[1:], psegs[1:], params)
	}
	name := t[1 : len(t)-1]
	most := 1
	if op.multi[name] {
		most = len(psegs) - (len(tsegs) - 1)
	}
	for n := most; n >= 1; n-- {
		parts := make([]string, n)
		ok := true
		for i, s := range psegs[:n] {
			var err error
			if parts[i], err = url.PathUnescape(s); err != nil || parts[i] == "" {
				ok = false
				break
			}
		}
		if ok && matchSegs(op, tsegs[1:], psegs[n:], params) {
			params[name] = strings.Join(parts, "/")
			return true
		}
	}
	return false
}

// ErrUnknownOperation is returned by ValidateRequest and ValidateResponse when no
// operation of openapi-subset.json matches the method and path.
var ErrUnknownOperation = errors.New("no operation in openapi-subset.json matches")

// ValidateRequest checks a request body against the requestBody schema of the
// operation that method and path match. path is either a concrete request path
// ("/repos/o/r/check-runs") or the template itself ("/repos/{owner}/{repo}/check-runs").
// An empty body is valid only when the operation's body is optional.
func ValidateRequest(method, path string, body []byte) error {
	sp := mustSpec()
	op, _ := sp.match(strings.ToUpper(method), path)
	if op == nil {
		return fmt.Errorf("%s %s: %w", method, path, ErrUnknownOperation)
	}
	return sp.validateRequest(op, "application/json", body)
}

// ValidateResponse checks a response body against the schema the operation
// documents for that status and content type (empty means application/json).
func ValidateResponse(method, path string, status int, contentType string, body []byte) error {
	sp := mustSpec()
	op, _ := sp.match(strings.ToUpper(method), path)
	if op == nil {
		return fmt.Errorf("%s %s: %w", method, path, ErrUnknownOperation)
	}
	if contentType == "" {
		contentType = "application/json"
	}
	return sp.validateResponse(op, status, contentType, body)
}

func (sp *spec) validateRequest(op *operation, contentType string, body []byte) error {
	rb, _ := op.raw["requestBody"].(map[string]any)
	if rb == nil {
		if len(bytes.TrimSpace(body)) > 0 {
			return fmt.Errorf("%s: request has a body but the operation takes none", op.key)
		}
		return nil
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if rb["required"] == true {
			return fmt.Errorf("%s: request body is required", op.key)
		}
		return nil
	}
	mt := mediaType(contentType)
	content, _ := rb["content"].(map[string]any)
	media, _ := content[mt].(map[string]any)
	if media == nil {
		return fmt.Errorf("%s: request Content-Type %q is not one of the documented %v", op.key, contentType, keys(content))
	}
	sch, err := sp.compile(op.key+" request "+mt, media["schema"])
	if err != nil {
		return err
	}
	if err := validateJSON(sch, body); err != nil {
		return fmt.Errorf("%s: request body: %w", op.key, err)
	}
	return nil
}

// errUndocumentedStatus is returned when the operation documents no such status.
var errUndocumentedStatus = errors.New("status not documented for this operation")

func (sp *spec) validateResponse(op *operation, status int, contentType string, body []byte) error {
	responses, _ := op.raw["responses"].(map[string]any)
	resp, _ := responses[strconv.Itoa(status)].(map[string]any)
	if resp == nil {
		resp, _ = responses["default"].(map[string]any)
	}
	if resp == nil {
		return fmt.Errorf("%s: response %d: %w (documented: %v)", op.key, status, errUndocumentedStatus, keys(responses))
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(bytes.TrimSpace(body)) > 0 {
			return fmt.Errorf("%s: response %d documents no body but one was sent", op.key, status)
		}
		return nil
	}
	mt := mediaType(contentType)
	media, _ := content[mt].(map[string]any)
	if media == nil {
		return fmt.Errorf("%s: response %d Content-Type %q is not one of the documented %v", op.key, status, contentType, keys(content))
	}
	sch, err := sp.compile(fmt.Sprintf("%s response %d %s", op.key, status, mt), media["schema"])
	if err != nil {
		return err
	}
	if err := validateJSON(sch, body); err != nil {
		return fmt.Errorf("%s: response %d: %w", op.key, status, err)
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
	loc := fmt.Sprintf("https://githubtest.invalid/schemas/%d.json", len(sp.schemas))
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
