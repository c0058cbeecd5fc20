package router

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/stagehand-dev/stagehand/bot"
)

// JobQueue publishes step jobs to the steps topic, where any replica's
// step worker takes them. The message ID is the job's dispatch ID, so the
// broker drops the copies the reconcile loop publishes while the first is
// still waiting.
type JobQueue struct {
	Publisher message.Publisher
}

// PublishJob implements bot.JobPublisher.
func (q JobQueue) PublishJob(ctx context.Context, j bot.Job) error {
	payload, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encoding job: %w", err)
	}
	msg := message.NewMessage(j.ID(), payload)
	msg.SetContext(ctx)
	return q.Publisher.Publish(TopicSteps, msg)
}
