package bot_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// TestCheckRunReportEncoding: each report reads back as itself, in the
// words stored before the reporter's state was typed.
func TestCheckRunReportEncoding(t *testing.T) {
	tests := []struct {
		r    bot.CheckRunReport
		want string
	}{
		{bot.CheckRunReport{}, ""},
		{bot.CheckRunReport{State: bot.CheckRunCreating}, "creating"},
		{bot.CheckRunReport{State: bot.CheckRunAdopted}, "adopted|"},
		{bot.CheckRunReport{State: bot.CheckRunClosed}, "closed|"},
		{bot.CheckRunReport{State: bot.CheckRunShown, Hash: "0a1b2c3d4e5f6071"}, "0a1b2c3d4e5f6071|"},
		{bot.CheckRunReport{State: bot.CheckRunShown, Hash: "0a1b2c3d4e5f6071", Gate: bot.CheckRunGate{At: true}}, "0a1b2c3d4e5f6071|gate"},
		{bot.CheckRunReport{State: bot.CheckRunShown, Hash: "0a1b2c3d4e5f6071", Gate: bot.CheckRunGate{At: true, Step: bot.StepApproval}}, "0a1b2c3d4e5f6071|gate:approval"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.r, got, tt.want)
		}
		if diff := cmp.Diff(tt.r, bot.ParseCheckRunReport(tt.want)); diff != "" {
			t.Errorf("ParseCheckRunReport(%q) (-want +got):\n%s", tt.want, diff)
		}
	}
	if got := (bot.CheckRunGate{At: true, Step: bot.StepSchedule}).Name(); got != "schedule" {
		t.Errorf("a schedule gate's name = %q", got)
	}
	if got := (bot.CheckRunGate{At: true}).Name(); got != "gate" {
		t.Errorf("a gate without a waiting step is named %q", got)
	}
}

func TestReportKeys(t *testing.T) {
	for _, n := range []int{0, 1, 12} {
		if got, ok := bot.CheckRunPhase(bot.CheckRunKey(n)); !ok || got != n {
			t.Errorf("CheckRunPhase(CheckRunKey(%d)) = %d, %v", n, got, ok)
		}
	}
	if got := bot.CheckRunKey(1); got != "check-run/1" {
		t.Errorf("CheckRunKey(1) = %q", got)
	}
	if got := bot.DeploymentKey(bot.StepDeployStage); got != "deployment/deploy-stage" {
		t.Errorf("DeploymentKey(deploy-stage) = %q", got)
	}
	for _, key := range []string{"deployment/deploy-stage", "check-run/", "check-run/x", "check-run/-1", "check-run/01"} {
		if _, ok := bot.CheckRunPhase(key); ok {
			t.Errorf("CheckRunPhase(%q) is a check run's", key)
		}
	}
}

func TestButtonsShownOffers(t *testing.T) {
	shown := bot.ButtonsShown{CheckRunID: 7, Identifiers: []string{"approve", "reject"}, Events: 3}
	for _, tt := range []struct {
		checkRun int64
		action   string
		want     bool
	}{
		{7, "approve", true},
		{7, "reject", true},
		{7, "deploy_now", false}, // not offered now
		{6, "approve", false},    // an older check run
	} {
		if got := shown.Offers(tt.checkRun, tt.action); got != tt.want {
			t.Errorf("Offers(%d, %q) = %v, want %v", tt.checkRun, tt.action, got, tt.want)
		}
	}
}

func TestDeploymentStateOf(t *testing.T) {
	for _, tt := range []struct {
		step bot.Step
		want bot.DeploymentState
		ok   bool
	}{
		{bot.Step{State: bot.StepPending}, bot.DeploymentNotReported, false},
		{bot.Step{State: bot.StepRunning}, bot.DeploymentInProgress, false}, // dispatched, not started
		{bot.Step{State: bot.StepRunning, Attempt: 1}, bot.DeploymentInProgress, true},
		{bot.Step{State: bot.StepSucceeded, Attempt: 1}, bot.DeploymentSuccess, true},
		{bot.Step{State: bot.StepFailed, Attempt: 1}, bot.DeploymentFailure, true},
		{bot.Step{State: bot.StepCancelled}, bot.DeploymentFailure, true},
		{bot.Step{State: bot.StepSkipped}, bot.DeploymentNotReported, false},
	} {
		got, ok := bot.DeploymentStateOf(tt.step)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("DeploymentStateOf(%s, attempt %d) = %q, %v; want %q, %v", tt.step.State, tt.step.Attempt, got, ok, tt.want, tt.ok)
		}
	}
}
