package schemacheck

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestToJSONSchema(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"nullable type", map[string]any{"type": "string", "nullable": true},
			map[string]any{"type": []any{"string", "null"}}},
		{"nullable enum gets null", map[string]any{"type": "string", "enum": []any{"a"}, "nullable": true},
			map[string]any{"type": []any{"string", "null"}, "enum": []any{"a", nil}}},
		{"nullable without type", map[string]any{"nullable": true, "anyOf": []any{map[string]any{"type": "object"}}},
			map[string]any{"anyOf": []any{
				map[string]any{"anyOf": []any{map[string]any{"type": "object"}}},
				map[string]any{"type": "null"},
			}}},
		{"nullable false", map[string]any{"type": "integer", "nullable": false},
			map[string]any{"type": "integer"}},
		{"drops OpenAPI-only keywords, keeps property names", map[string]any{
			"type": "object", "discriminator": map[string]any{"propertyName": "status"},
			"example": 1, "examples": []any{1}, "x-github": true, "externalDocs": map[string]any{},
			"properties": map[string]any{
				"example":  map[string]any{"type": "string", "example": "x"},
				"x-custom": map[string]any{"type": "integer", "x-note": "y"},
			},
		}, map[string]any{
			"type": "object",
			"properties": map[string]any{
				"example":  map[string]any{"type": "string"},
				"x-custom": map[string]any{"type": "integer"},
			},
		}},
		{"nested items and oneOf", map[string]any{
			"type": "array", "items": map[string]any{"oneOf": []any{map[string]any{"type": "string", "nullable": true}}},
		}, map[string]any{
			"type": "array", "items": map[string]any{"oneOf": []any{map[string]any{"type": []any{"string", "null"}}}},
		}},
		{"boolean exclusiveMinimum", map[string]any{"type": "number", "minimum": 0, "exclusiveMinimum": true},
			map[string]any{"type": "number", "exclusiveMinimum": 0}},
		{"additionalProperties bool kept", map[string]any{"additionalProperties": true},
			map[string]any{"additionalProperties": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, toJSONSchema(tt.in)); diff != "" {
				t.Errorf("toJSONSchema (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateRequest(t *testing.T) {
	const checkRuns = "/repos/acme/app/check-runs"
	tests := []struct {
		name, method, path, body string
		wantErr                  string // substring; empty means valid
	}{
		{"check run ok", "POST", checkRuns, `{"name":"stagehand/stage-only","head_sha":"abc"}`, ""},
		{"check run by template", "POST", "/repos/{owner}/{repo}/check-runs", `{"name":"x","head_sha":"abc","status":"in_progress"}`, ""},
		{"check run without name", "POST", checkRuns, `{"head_sha":"abc"}`, "name"},
		{"completed without conclusion", "POST", checkRuns, `{"name":"x","head_sha":"abc","status":"completed"}`, "oneOf"},
		{"completed with conclusion", "POST", checkRuns, `{"name":"x","head_sha":"abc","status":"completed","conclusion":"action_required"}`, ""},
		{"bad conclusion", "POST", checkRuns, `{"name":"x","head_sha":"abc","status":"completed","conclusion":"great"}`, "conclusion"},
		{"action identifier too long", "POST", checkRuns,
			`{"name":"x","head_sha":"abc","status":"completed","conclusion":"neutral","actions":[{"label":"Promote Build","description":"d","identifier":"123456789012345678901"}]}`,
			"identifier"},
		{"body required", "POST", checkRuns, ``, "required"},
		{"not JSON", "POST", checkRuns, `{`, "not valid JSON"},
		{"token body optional", "POST", "/app/installations/1/access_tokens", ``, ""},
		{"token body null", "POST", "/app/installations/1/access_tokens", `null`, "null"},
		{"token body wrong type", "POST", "/app/installations/1/access_tokens", `{"repositories":"app"}`, "repositories"},
		{"GET with body", "GET", "/rate_limit", `{}`, "takes none"},
		{"deployment without ref", "POST", "/repos/acme/app/deployments", `{"environment":"stage"}`, "ref"},
		{"unknown operation", "GET", "/gists", ``, ErrUnknownOperation.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateRequest(tt.method, tt.path, []byte(tt.body))
			checkErr(t, err, tt.wantErr)
		})
	}
	if err := ValidateRequest("GET", "/gists", nil); !errors.Is(err, ErrUnknownOperation) {
		t.Errorf("ValidateRequest(GET /gists) = %v, want ErrUnknownOperation", err)
	}
}

func TestValidateResponse(t *testing.T) {
	const contents = "/repos/acme/app/contents/a.txt"
	file := `{"type":"file","encoding":"base64","size":1,"name":"a.txt","path":"a.txt","content":"YQ==",
		"sha":"2e65efe2a145dda7ee51d1741299f848e5bf752e","url":"https://api.github.com/repos/acme/app/contents/a.txt",
		"git_url":null,"html_url":null,"download_url":null,
		"_links":{"self":"https://api.github.com/repos/acme/app/contents/a.txt","git":null,"html":null}}`
	tests := []struct {
		name        string
		method      string
		path        string
		status      int
		contentType string
		body        string
		wantErr     string
	}{
		{"file ok, nullable urls", "GET", contents, 200, "application/json; charset=utf-8", file, ""},
		{"file without sha", "GET", contents, 200, "", strings.Replace(file, `"sha":`, `"shx":`, 1), "oneOf"},
		{"not found", "GET", contents, 404, "", `{"message":"Not Found","documentation_url":"x","status":"404"}`, ""},
		{"undocumented status", "GET", contents, 500, "", `{}`, "not documented"},
		{"undocumented media type", "GET", contents, 200, "text/plain", `{}`, "Content-Type"},
		{"token ok", "POST", "/app/installations/1/access_tokens", 201, "", `{"token":"t","expires_at":"2026-01-01T00:00:00Z"}`, ""},
		{"token without expiry", "POST", "/app/installations/1/access_tokens", 201, "", `{"token":"t"}`, "expires_at"},
		{"token bad permission", "POST", "/app/installations/1/access_tokens", 201, "", `{"token":"t","expires_at":"x","permissions":{"checks":"admin"}}`, "checks"},
		{"rate limit without core", "GET", "/rate_limit", 200, "", `{"resources":{"search":{"limit":1,"remaining":1,"reset":1,"used":0}},"rate":{"limit":1,"remaining":1,"reset":1,"used":0}}`, "core"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateResponse(tt.method, tt.path, tt.status, tt.contentType, []byte(tt.body))
			checkErr(t, err, tt.wantErr)
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("got error %v, want none", err)
	case want != "" && err == nil:
		t.Errorf("got no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("got error %v, want one containing %q", err, want)
	}
}
