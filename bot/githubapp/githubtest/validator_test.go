package githubtest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// withRegistered runs the test with v registered, nil as in a package that
// did not import schemacheck (this test binary does, through the external
// tests).
func withRegistered(t *testing.T, v Validator) {
	registered.mu.Lock()
	saved := registered.v
	registered.v = v
	registered.mu.Unlock()
	t.Cleanup(func() {
		registered.mu.Lock()
		registered.v = saved
		registered.mu.Unlock()
	})
}

// fatalTB records what New says to a test, stopping at Fatalf as a test does.
type fatalTB struct {
	testing.TB
	fatal string
}

type stopped struct{}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	panic(stopped{})
}

func TestNewWithoutValidatorFailsTheTest(t *testing.T) {
	withRegistered(t, nil)
	tb := &fatalTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != (stopped{}) {
				panic(r)
			}
		}()
		New(tb)
	}()
	const want = `import _ "github.com/stagehand-dev/stagehand/bot/githubapp/githubtest/schemacheck"`
	if !strings.Contains(tb.fatal, want) {
		t.Errorf("New without a Validator said %q to the test, want it to name\n%s", tb.fatal, want)
	}
}

func TestNewWithoutValidatorAndTestPanics(t *testing.T) {
	withRegistered(t, nil)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "schemacheck") {
			t.Errorf("New(nil) without a Validator: recovered %v, want a panic naming schemacheck", r)
		}
	}()
	New(nil)
}

// fakeValidator records what it is asked and refuses every request body.
type fakeValidator struct {
	mu    sync.Mutex
	asked []string
}

func (f *fakeValidator) CheckRequest(op, contentType string, body []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, "request "+op+" "+string(body))
	return errors.New("refused by the fake")
}

func (f *fakeValidator) CheckResponse(op string, status int, contentType string, body []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, fmt.Sprintf("response %s %d", op, status))
	return nil
}

func postCheckRun(t *testing.T, s *Server) int {
	t.Helper()
	resp, err := http.Post(s.URL()+"repos/acme/app/check-runs", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestWithValidatorChecksRequests(t *testing.T) {
	withRegistered(t, nil)
	v := &fakeValidator{}
	s := New(t, WithValidator(v))
	if got := postCheckRun(t, s); got != http.StatusUnprocessableEntity {
		t.Errorf("status %d, want 422 for a body the Validator refuses", got)
	}
	want := []string{"request POST /repos/{owner}/{repo}/check-runs {}"}
	if diff := cmp.Diff(want, v.asked); diff != "" {
		t.Errorf("Validator asked (-want +got):\n%s", diff)
	}
	if errs := s.Errors(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "refused by the fake") {
		t.Errorf("Errors() = %v, want the Validator's refusal", errs)
	}
}

func TestOptionalSchemaChecksServeWithoutValidator(t *testing.T) {
	withRegistered(t, nil)
	s := New(t, OptionalSchemaChecks())
	if got := postCheckRun(t, s); got != http.StatusUnauthorized {
		t.Errorf("status %d, want 401 (unchecked body, no token)", got)
	}
	s.AssertNoErrors(t)
}

// The playground's stand-in checks bodies in its tests, where schemacheck is
// registered.
func TestOptionalSchemaChecksUseTheRegisteredValidator(t *testing.T) {
	v := &fakeValidator{}
	withRegistered(t, v)
	s := New(t, OptionalSchemaChecks())
	if got := postCheckRun(t, s); got != http.StatusUnprocessableEntity {
		t.Errorf("status %d, want 422 for a body the registered Validator refuses", got)
	}
	if len(v.asked) != 1 {
		t.Errorf("registered Validator asked %v, want the one request", v.asked)
	}
}
