# syntax=docker/dockerfile:1
#
# The image of `stagehand serve`; the Helm chart (charts/stagehand) runs it
# as ghcr.io/stagehand-dev/stagehand:<appVersion>.
#
#   docker build -t ghcr.io/stagehand-dev/stagehand:0.1.0 --build-arg VERSION=v0.1.0 .
#
# Build stage: a static binary. modernc.org/sqlite is pure Go, so cgo is off
# and the binary needs no C library. It cross-compiles for the target
# platform (docker buildx build --platform linux/amd64,linux/arm64 ...).
ARG GO_VERSION=1.26.8
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=""
ARG TARGETOS=linux
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.Version=${VERSION}" \
      -o /out/stagehand ./cmd/stagehand

# Runtime stage. Not distroless or scratch: Stagehand runs the pipeline
# steps of .github/stagehand.yml in this container with `bash -eo pipefail`
# in a checkout made by `git`, so the image needs bash, git and CA
# certificates (git over HTTPS), which distroless and scratch do not have.
# debian:bookworm-slim is the smallest base that has them as maintained
# packages. tini is PID 1 so that processes a step leaves behind are reaped.
# bubblewrap is the step sandbox (docs/security.md, "Step isolation"); it
# needs user namespaces, which the container runtime's default seccomp
# profile may refuse: serve then says so at start.
# Builds that need more tools (make, node, a cloud CLI) use an image made
# FROM this one (see docs/operating.md).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash bubblewrap ca-certificates git tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 stagehand \
 && useradd --uid 65532 --gid 65532 --home-dir /home/stagehand --create-home --shell /usr/sbin/nologin stagehand \
 && mkdir -p /var/lib/stagehand \
 && chown 65532:65532 /var/lib/stagehand
COPY --from=build /out/stagehand /usr/local/bin/stagehand
LABEL org.opencontainers.image.title="stagehand" \
      org.opencontainers.image.description="GitHub App for stage-only, prod-only and full-stack deployment pipelines" \
      org.opencontainers.image.source="https://github.com/stagehand-dev/stagehand"
ENV STAGEHAND_DATA_DIR=/var/lib/stagehand \
    STAGEHAND_LISTEN=:8080 \
    HOME=/home/stagehand
WORKDIR /var/lib/stagehand
USER 65532:65532
# 8080: webhooks and the dashboard; 9090: /metrics when --metrics-listen :9090
# (the chart sets it).
EXPOSE 8080 9090
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/stagehand"]
CMD ["serve"]
