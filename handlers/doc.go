// Package handlers holds what Stagehand does with the work the router
// hands it, in four rooms, one per concern:
//
//   - webhook: one file per GitHub event (push, installation, repository,
//     issue_comment, check_run and check_suite), run after the delivery is
//     durable; each file declares the events it handles.
//   - worker: the step worker: claims a step, runs its commands in a
//     sandbox (or on a remote worker), reports the outcome; its secrets,
//     git checkouts, step logs and retention.
//   - reporter: brings executions to GitHub as check runs and Deployments.
//   - web: the dashboard, its sign-in and the JSON API.
//
// This package itself holds no code: its tests drive the rooms together
// (a push through the webhook handler, steps through the worker, check
// runs through the reporter) against the GitHub stand-in.
package handlers
