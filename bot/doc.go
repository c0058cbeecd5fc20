// Package bot is Stagehand's domain: programs, pipelines, executions and
// steps, the repository configuration they are built from, and the rules of
// the product specification (trigger priority, pipeline set constraints, ...).
//
// It imports the standard library only. Adapters (GitHub, SQL, NATS, HTTP)
// live in other packages and depend on this one, never the other way round.
package bot
