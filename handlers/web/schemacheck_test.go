package web

// The GitHub stand-in checks bodies against GitHub's schemas in these tests.
import _ "github.com/stagehand-dev/stagehand/bot/githubapp/githubtest/schemacheck"
