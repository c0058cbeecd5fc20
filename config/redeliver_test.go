package config

import (
	"strings"
	"testing"
	"time"
)

func TestRedeliverIntervalFlag(t *testing.T) {
	tests := []struct {
		args    []string
		env     string
		want    time.Duration
		wantErr string
	}{
		{args: nil, want: 5 * time.Minute}, // on by default
		{args: []string{"--redeliver-interval", "2m"}, want: 2 * time.Minute},
		{args: []string{"--redeliver-interval", "0"}, want: 0}, // off
		{env: "10m", want: 10 * time.Minute},
		{args: []string{"--redeliver-interval", "1m"}, env: "10m", want: time.Minute}, // the flag wins
		{env: "0", want: 0},
		{args: []string{"--redeliver-interval", "-1m"}, wantErr: "--redeliver-interval -1m0s: give a positive duration"},
		{env: "often", wantErr: `environment variable STAGEHAND_REDELIVER_INTERVAL="often"`},
	}
	for _, tt := range tests {
		s, err := parseServe(tt.args, "STAGEHAND_REDELIVER_INTERVAL", tt.env)
		if err == nil && tt.wantErr != "" {
			err = s.Resolve(func(string) string { return "" })
		}
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v env %q: error %v, want one containing %q", tt.args, tt.env, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("%v env %q: %v", tt.args, tt.env, err)
		case s.RedeliverInterval != tt.want:
			t.Errorf("%v env %q: interval %v, want %v", tt.args, tt.env, s.RedeliverInterval, tt.want)
		}
	}
}
