{{/*
Names and labels.
*/}}
{{- define "stagehand.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stagehand.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "stagehand.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stagehand.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stagehand.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "stagehand.labels" -}}
helm.sh/chart: {{ include "stagehand.chart" . }}
{{ include "stagehand.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: server
{{- end }}

{{- define "stagehand.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stagehand.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "stagehand.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Modes. Each helper prints "true" or nothing, so that it can be used in if.
*/}}
{{- define "stagehand.externalDatabase" -}}
{{- if or .Values.database.url .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{- define "stagehand.externalNats" -}}
{{- if or .Values.nats.url .Values.nats.existingSecret }}true{{ end }}
{{- end }}

{{/* scale-out: both the database and the broker are outside the pod. */}}
{{- define "stagehand.scaleOut" -}}
{{- if and (include "stagehand.externalDatabase" .) (include "stagehand.externalNats" .) }}true{{ end }}
{{- end }}

{{/* The chart's PersistentVolumeClaim: embedded mode with persistence and no existing claim. */}}
{{- define "stagehand.createPVC" -}}
{{- if and (not (include "stagehand.scaleOut" .)) .Values.persistence.enabled (not .Values.persistence.existingClaim) }}true{{ end }}
{{- end }}

{{/* The chart's Secret: whatever secret the user did not bring. */}}
{{- define "stagehand.createSecret" -}}
{{- if or (not .Values.github.existingSecret) (and .Values.database.url (not .Values.database.existingSecret)) (and .Values.dashboard.clientId (not .Values.dashboard.existingSecret)) }}true{{ end }}
{{- end }}

{{/* Dashboard sign-in is configured: the App's client ID (its secret is checked by validate). */}}
{{- define "stagehand.signIn" -}}
{{- if .Values.dashboard.clientId }}true{{ end }}
{{- end }}

{{- define "stagehand.dashboardSecretName" -}}
{{- default (include "stagehand.fullname" .) .Values.dashboard.existingSecret }}
{{- end }}

{{- define "stagehand.dashboardDir" -}}/etc/stagehand/dashboard{{- end }}

{{/*
The session key of the chart's Secret: dashboard.sessionKey, else the one
the release's Secret holds already (kept across upgrades), else a new one.
*/}}
{{- define "stagehand.sessionKey" -}}
{{- if .Values.dashboard.sessionKey }}
{{- .Values.dashboard.sessionKey }}
{{- else }}
{{- $old := lookup "v1" "Secret" .Release.Namespace (include "stagehand.fullname" .) }}
{{- $kept := "" }}
{{- if $old }}{{ $kept = index (default dict $old.data) .Values.dashboard.sessionKeyKey | default "" }}{{ end }}
{{- if $kept }}{{ $kept | b64dec }}{{ else }}{{ randAlphaNum 64 }}{{ end }}
{{- end }}
{{- end }}

{{- define "stagehand.githubSecretName" -}}
{{- default (include "stagehand.fullname" .) .Values.github.existingSecret }}
{{- end }}

{{- define "stagehand.appId" -}}
{{- printf "%d" (int64 .Values.github.appId) }}
{{- end }}

{{- define "stagehand.publicUrl" -}}
{{- if .Values.publicUrl }}
{{- .Values.publicUrl }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- $tls := false }}
{{- range .Values.ingress.tls }}{{ if has $host (default list .hosts) }}{{ $tls = true }}{{ end }}{{ end }}
{{- printf "%s://%s" (ternary "https" "http" $tls) $host }}
{{- end }}
{{- end }}

{{- define "stagehand.privateKeyDir" -}}/etc/stagehand/github{{- end }}

{{/*
Checks that fail the render with a message that says what to set.
*/}}
{{- define "stagehand.validate" -}}
{{- $replicas := int .Values.replicaCount }}
{{- $db := include "stagehand.externalDatabase" . }}
{{- $nats := include "stagehand.externalNats" . }}
{{- if and (gt $replicas 1) (not (and $db $nats)) }}
{{- $missing := list }}
{{- if not $db }}{{ $missing = append $missing "database.url (or database.existingSecret) for a shared PostgreSQL" }}{{ end }}
{{- if not $nats }}{{ $missing = append $missing "nats.url (or nats.existingSecret) for an external NATS JetStream" }}{{ end }}
{{- fail (printf "replicaCount=%d needs a shared database and an external NATS, but %s %s not set. Without both, Stagehand keeps SQLite and its embedded NATS store in one pod's volume, so this chart runs exactly 1 replica: set replicaCount=1, or set the missing values (see values-scaleout.yaml)." $replicas (join " and " $missing) (ternary "is" "are" (eq (len $missing) 1))) }}
{{- end }}
{{- if and .Values.database.url .Values.database.existingSecret }}
{{- fail "set database.url or database.existingSecret, not both" }}
{{- end }}
{{- if and .Values.nats.url .Values.nats.existingSecret }}
{{- fail "set nats.url or nats.existingSecret, not both" }}
{{- end }}
{{- $appId := required "github.appId is required: the App ID from the GitHub App's settings page (--set github.appId=123456)" .Values.github.appId }}
{{- if le (int64 $appId) 0 }}
{{- fail (printf "github.appId %v is not an App ID: use the number from the GitHub App's settings page" $appId) }}
{{- end }}
{{- if not .Values.github.existingSecret }}
{{- if not .Values.github.privateKey }}
{{- fail "the GitHub App private key is missing: set github.existingSecret to a Secret holding it (key github.privateKeyKey) and the webhook secret, or pass --set-file github.privateKey=app.pem" }}
{{- end }}
{{- if not (contains "PRIVATE KEY-----" .Values.github.privateKey) }}
{{- fail "github.privateKey is not a PEM private key: pass the .pem file downloaded from the GitHub App's settings with --set-file github.privateKey=app.pem" }}
{{- end }}
{{- if not .Values.github.webhookSecret }}
{{- fail "the webhook secret is missing: set github.webhookSecret (the secret in the GitHub App's webhook settings) or github.existingSecret; Stagehand never accepts unsigned deliveries" }}
{{- end }}
{{- end }}
{{- if and .Values.worker.enabled (not (include "stagehand.scaleOut" .)) }}
{{- fail "worker.enabled needs the scale-out mode: the workers take their steps from an external NATS and the servers share PostgreSQL; set database and nats (see values-scaleout.yaml)" }}
{{- end }}
{{- if and .Values.worker.enabled (not (or .Values.worker.nats.url .Values.worker.nats.existingSecret)) }}
{{- fail "worker.enabled needs the worker's own NATS connection: set worker.nats.existingSecret to a Secret holding a NATS URL with the worker role's user (nats://worker:PASSWORD@HOST:4222), whose permissions keep it to the worker's subjects (docs/operating.md); the servers' URL would give the workers the servers' NATS rights" }}
{{- end }}
{{- if and .Values.dashboard.enabled (not (include "stagehand.signIn" .)) }}
{{- fail "dashboard.enabled exposes the dashboard through the ingress, which needs sign-in with GitHub: set dashboard.clientId (the App's Client ID) and dashboard.clientSecret or dashboard.existingSecret (see docs/operating.md)" }}
{{- end }}
{{- if and (include "stagehand.signIn" .) (not .Values.dashboard.clientSecret) (not .Values.dashboard.existingSecret) }}
{{- fail "dashboard.clientId is set but the client secret is missing: set dashboard.clientSecret (generate one on the App's settings page) or dashboard.existingSecret" }}
{{- end }}
{{- if and .Values.persistence.existingClaim (include "stagehand.scaleOut" .) }}
{{- fail "persistence.existingClaim is for the embedded mode (one replica); with database and nats set the data dir is an emptyDir: use artifacts.existingClaim for artifact sets every replica shares" }}
{{- end }}
{{- end }}

{{/* An int, or a percentage as a quoted string ("50%"). */}}
{{- define "stagehand.intOrPercent" -}}
{{- if and (kindIs "string" .) (hasSuffix "%" .) }}{{ . | quote }}{{ else }}{{ int64 . }}{{ end }}
{{- end }}

{{/*
The worker role (worker.enabled): its own name label, so that neither the
server's Deployment nor its Service selects the worker's pods.
*/}}
{{- define "stagehand.workerSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-worker" (include "stagehand.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "stagehand.workerLabels" -}}
helm.sh/chart: {{ include "stagehand.chart" . }}
{{ include "stagehand.workerSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "stagehand.workerName" -}}
{{- printf "%s-worker" (include "stagehand.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
