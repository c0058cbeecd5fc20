package githubtest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
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

// spec is what the stand-in reads of openapi-subset.json to route: the
// operations and their paths. Checking bodies against the schemas is the
// Validator's job (package schemacheck).
type spec struct {
	ops   []*operation
	byKey map[string]*operation
}

// MatchOperation returns the key of the operation of openapi-subset.json
// that method and an escaped path match, e.g. "GET
// /repos/{owner}/{repo}/contents/{path}" for GET
// /repos/acme/app/contents/a.txt, or "" if none does. path may also be a
// template of the document itself.
func MatchOperation(method, escapedPath string) string {
	op, _ := mustSpec().match(strings.ToUpper(method), escapedPath)
	if op == nil {
		return ""
	}
	return op.key
}

// loadSpec parses the embedded OpenAPI document once per process.
var loadSpec = sync.OnceValues(func() (*spec, error) {
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		return nil, fmt.Errorf("openapi-subset.json: %w", err)
	}
	sp := &spec{byKey: map[string]*operation{}}
	for template, item := range doc.Paths {
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
