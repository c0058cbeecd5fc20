package bot

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLostDeliveries(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	a := func(id int64, guid string, min, code int) HookDelivery {
		return HookDelivery{ID: id, GUID: guid, Event: "push", DeliveredAt: at(min), StatusCode: code}
	}
	tests := []struct {
		name     string
		attempts []HookDelivery
		want     []int64 // ids picked, in order
	}{
		{"delivered", []HookDelivery{a(1, "g", 1, 202)}, nil},
		{"refused connection", []HookDelivery{a(1, "g", 1, 0)}, []int64{1}},
		{"5xx", []HookDelivery{a(1, "g", 1, 503)}, []int64{1}},
		{"408 and 429", []HookDelivery{a(1, "g", 1, 408), a(2, "h", 2, 429)}, []int64{1, 2}},
		{"a 4xx is Stagehand's answer to the request", []HookDelivery{a(1, "g", 1, 401), a(2, "h", 2, 413), a(3, "i", 3, 400)}, nil},
		{"failed, then delivered by a redelivery", []HookDelivery{a(2, "g", 2, 200), a(1, "g", 1, 503)}, nil},
		{"delivered, then a later attempt failed", []HookDelivery{a(1, "g", 1, 202), a(2, "g", 2, 503)}, nil},
		{"two failed attempts: the latest is named", []HookDelivery{a(3, "g", 3, 0), a(1, "g", 1, 503)}, []int64{3}},
		{"oldest event first, whatever the listing order", []HookDelivery{a(9, "new", 9, 0), a(5, "mid", 5, 0), a(8, "old", 8, 0), a(2, "old", 2, 0)}, []int64{8, 5, 9}},
		{"before the look-back", []HookDelivery{a(1, "g", -1, 0)}, nil},
		{"delivered before the look-back, failed within it", []HookDelivery{a(1, "g", -1, 202), a(2, "g", 2, 0)}, []int64{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int64
			for _, d := range LostDeliveries(tt.attempts, t0) {
				got = append(got, d.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("LostDeliveries (-want +got):\n%s", diff)
			}
		})
	}
}
