package githubtest

import (
	"fmt"
	"sync"
)

// TB is what the stand-in uses of a test: the methods of testing.TB it
// calls, declared here so that the package (which the playground serves in
// the shipped binary) does not link the testing package. A *testing.T or
// *testing.B is one.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Validator checks bodies against the schemas of openapi-subset.json. op is
// an operation key as in Call.Operation, e.g. "POST
// /repos/{owner}/{repo}/check-runs"; contentType is the request's or the
// response's Content-Type header. Package schemacheck is the one
// implementation; it stays out of the shipped binary.
type Validator interface {
	CheckRequest(op, contentType string, body []byte) error
	CheckResponse(op string, status int, contentType string, body []byte) error
}

// schemaCheckImport is the import that registers the Validator; a test
// package that starts a stand-in needs it (a blank import in one of its test
// files).
const schemaCheckImport = `import _ "github.com/stagehand-dev/stagehand/bot/githubapp/githubtest/schemacheck"`

var registered struct {
	mu sync.Mutex
	v  Validator
}

// Register makes v the Validator of every stand-in started afterwards
// without WithValidator. Package schemacheck calls it when imported, as a
// database/sql driver registers itself. It panics when called twice.
func Register(v Validator) {
	registered.mu.Lock()
	defer registered.mu.Unlock()
	if v == nil || registered.v != nil {
		panic("githubtest: Register called twice or with nil")
	}
	registered.v = v
}

func registeredValidator() Validator {
	registered.mu.Lock()
	defer registered.mu.Unlock()
	return registered.v
}

// WithValidator checks bodies with v instead of the registered Validator.
func WithValidator(v Validator) Option { return func(s *Server) { s.validator = v } }

// OptionalSchemaChecks lets New start without a Validator: without one
// registered (the shipped binary, where package schemacheck is not linked)
// the stand-in checks no bodies against the schemas and still routes by
// them. With one registered (a test binary) it checks as always. The
// playground serves its stand-in so.
func OptionalSchemaChecks() Option { return func(s *Server) { s.checksOptional = true } }

// pickValidator settles s.validator: the one given, else the registered
// one. Without either, and unless the checks are optional, it is an error:
// a test package that forgot the import would otherwise lose its schema
// checks without a word.
func (s *Server) pickValidator() error {
	if s.validator == nil {
		s.validator = registeredValidator()
	}
	if s.validator == nil && !s.checksOptional {
		return fmt.Errorf("no schema Validator registered: add\n\t%s\nto a test file of this package "+
			"(or pass githubtest.WithValidator, or githubtest.OptionalSchemaChecks to serve without checks)", schemaCheckImport)
	}
	return nil
}

// checkRequest checks a request body the bot sent, when there is a Validator.
func (s *Server) checkRequest(op *operation, contentType string, body []byte) error {
	if s.validator == nil {
		return nil
	}
	return s.validator.CheckRequest(op.key, contentType, body)
}
