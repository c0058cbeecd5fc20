package router

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagehand-dev/stagehand/state"
)

// ArtifactsBucket is the name of the object store bucket of a broker prefix.
func ArtifactsBucket(prefix string) string {
	if prefix == "" {
		prefix = defaultPrefix
	}
	return prefix + "_artifacts"
}

// NewNATSArtifacts creates (or updates) the artifacts bucket on b's server,
// stored in files with the replication of b's streams, and returns the
// shared store (state.NATSArtifacts) over local. ctx bounds the set-up only.
func NewNATSArtifacts(ctx context.Context, b *Broker, local state.LocalArtifacts) (*state.NATSArtifacts, error) {
	bucket := ArtifactsBucket(b.opts.Prefix)
	obs, err := b.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      bucket,
		Description: "Stagehand artifact sets: blobs/<sha256> and manifests/<digest>",
		Storage:     jetstream.FileStorage,
		Replicas:    b.opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the artifact bucket %s on %s: %w", bucket, b.where, err)
	}
	return state.NewNATSArtifacts(local, obs, bucket, b.where)
}

// BindNATSArtifacts is the worker role's artifact store: the bucket of
// prefix, which the server role created, over the worker's local store.
func BindNATSArtifacts(ctx context.Context, nc *nats.Conn, prefix string, local state.LocalArtifacts) (*state.NATSArtifacts, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("artifact store: %w", err)
	}
	bucket := ArtifactsBucket(prefix)
	obs, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("opening the artifact bucket %s (a server with --step-runner remote creates it; is one running on this NATS, and may the worker's user read it?): %w", bucket, err)
	}
	return state.NewNATSArtifacts(local, obs, bucket, "the nats server at "+redactURL(nc.ConnectedUrlRedacted()))
}
