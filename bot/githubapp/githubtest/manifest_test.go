package githubtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest/schemacheck"
)

// TestGetAppIsAnIntegration: GET /app is served outside the subset (its
// operation is not in openapi-subset.json), so its answer is checked here
// against the one description of an App the subset has: the "integration"
// of the manifest conversion's 201 (with the conversion's own fields
// added, as that answer has them).
func TestGetAppIsAnIntegration(t *testing.T) {
	gh := githubtest.New(t)
	_, key := githubtest.GenerateAppKey(t)
	gh.SetAppKey(7, &key.PublicKey)
	req, err := http.NewRequest(http.MethodGet, gh.URL()+"app", nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	req.Header.Set("Authorization", "Bearer "+appJWT(t, key, jwt.SigningMethodRS256, jwt.MapClaims{"iss": "7", "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix()}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /app: %s %s", resp.Status, body)
	}
	var app map[string]any
	if err := json.Unmarshal(body, &app); err != nil {
		t.Fatal(err)
	}
	if app["id"] != float64(7) {
		t.Errorf("GET /app answers App %v, want the JWT's 7", app["id"])
	}
	for k, v := range map[string]any{"client_id": "Iv23liX", "client_secret": "x", "webhook_secret": "x", "pem": "x"} {
		app[k] = v
	}
	asConversion, _ := json.Marshal(app)
	if err := schemacheck.ValidateResponse(http.MethodPost, "/app-manifests/code/conversions", http.StatusCreated, "", asConversion); err != nil {
		t.Errorf("GET /app's answer is not an integration: %v", err)
	}
	gh.AssertNoErrors(t)
}
