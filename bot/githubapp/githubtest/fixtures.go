package githubtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"sort"
	"strings"
)

// fixtures holds GitHub's own data, copied with provenance (testdata/SOURCES.md)
// and licences (testdata/LICENSES/): the OpenAPI subset the stand-in validates
// against, and real webhook payload examples.
//
//go:embed testdata/openapi-subset.json testdata/webhooks testdata/LICENSES testdata/SOURCES.md
var fixtures embed.FS

const payloadDir = "testdata/webhooks/"

// Payload returns a copy of an embedded webhook payload example, named by its
// path under testdata/webhooks, e.g. Payload("push/branch-created.json").
// It panics on an unknown name: payload names are fixed at compile time.
func Payload(name string) []byte {
	data, err := fixtures.ReadFile(payloadDir + name)
	if err != nil {
		panic("githubtest: unknown payload " + name + " (see PayloadNames)")
	}
	return data
}

// PayloadNames lists every embedded payload example, sorted, in the form
// Payload accepts.
func PayloadNames() []string {
	var names []string
	err := fs.WalkDir(fixtures, strings.TrimSuffix(payloadDir, "/"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".json") {
			names = append(names, strings.TrimPrefix(path, payloadDir))
		}
		return nil
	})
	if err != nil {
		panic("githubtest: " + err.Error())
	}
	sort.Strings(names)
	return names
}

// OpenAPI returns the embedded openapi-subset.json document.
func OpenAPI() []byte {
	data, err := fixtures.ReadFile("testdata/openapi-subset.json")
	if err != nil {
		panic("githubtest: " + err.Error())
	}
	return data
}

// Sign returns the X-Hub-Signature-256 header value GitHub sends for body:
// "sha256=" followed by the hex HMAC-SHA256 of body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
