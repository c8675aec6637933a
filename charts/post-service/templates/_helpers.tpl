{{/* Names ------------------------------------------------------------------------------- */}}

{{- define "post-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "post-service.fullname" -}}
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

{{- define "post-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "post-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "post-service.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "post-service.dbSecretName" -}}
{{- default (include "post-service.fullname" .) .Values.database.existingSecret }}
{{- end }}

{{- define "post-service.dbSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}DB_URL{{ end }}
{{- end }}

{{/* DB_READ_URL's key in the database Secret; empty when there is no read URL. */}}
{{- define "post-service.dbReadSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretReadKey }}{{ else if .Values.database.readUrl }}DB_READ_URL{{ end }}
{{- end }}

{{/* "true" when the chart renders the database Secret (neither existingSecret nor credentials). */}}
{{- define "post-service.chartSecret" -}}
{{- if not (or .Values.database.existingSecret .Values.database.credentials.secret) }}true{{ end }}
{{- end }}

{{/* The Secret's data: DB_URL and, when set, DB_READ_URL. */}}
{{- define "post-service.secretData" -}}
DB_URL: {{ required (include "post-service.dbUrlRequired" .) .Values.database.url | b64enc | quote }}
{{- with .Values.database.readUrl }}
DB_READ_URL: {{ . | b64enc | quote }}
{{- end }}
{{- end }}

{{/* A URL Kubernetes composes from the credentials Secret's keys (dependent env vars). */}}
{{- define "post-service.credentialsUrl" -}}
{{- printf "postgresql+asyncpg://$(DB_SECRET_USERNAME):$(DB_SECRET_PASSWORD)@%s:%d/$(DB_SECRET_DBNAME)" .host (int .port) }}
{{- end }}

{{/* Labels ------------------------------------------------------------------------------ */}}

{{- define "post-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "post-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "post-service.labels" -}}
helm.sh/chart: {{ include "post-service.chart" . }}
{{ include "post-service.selectorLabels" . }}
app.kubernetes.io/version: {{ include "post-service.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: forum
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Server pods: selector and object labels (component=server). */}}
{{- define "post-service.serverSelectorLabels" -}}
{{ include "post-service.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "post-service.serverLabels" -}}
{{ include "post-service.labels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "post-service.migrationsLabels" -}}
{{ include "post-service.labels" . }}
app.kubernetes.io/component: migrations
{{- end }}

{{/* Image ------------------------------------------------------------------------------- */}}

{{- define "post-service.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString }}
{{- end }}

{{- define "post-service.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (include "post-service.imageTag" .) }}
{{- if .Values.image.digest }}
{{- $ref = printf "%s@%s" $ref .Values.image.digest }}
{{- end }}
{{- $ref }}
{{- end }}

{{/* Settings ---------------------------------------------------------------------------- */}}

{{/* The ConfigMap's data: non-empty `config` entries plus the listen addresses/ports. */}}
{{- define "post-service.configData" -}}
GRPC_HOST: "0.0.0.0"
GRPC_PORT: {{ .Values.ports.grpc | quote }}
METRICS_HOST: "0.0.0.0"
METRICS_PORT: {{ .Values.ports.metrics | quote }}
{{- range $key, $value := .Values.config }}
{{- if ne (toString $value) "" }}
{{ $key }}: {{ include "post-service.scalar" $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* A value as an env string: whole numbers without the float64 exponent Helm would print. */}}
{{- define "post-service.scalar" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{- define "post-service.dbUrlRequired" -}}
post-service: set database.url (postgresql+asyncpg://USER:PASSWORD@HOST:5432/post_db, e.g. --set-string database.url=...) or database.existingSecret (a Secret with a DB_URL key) or database.credentials (e.g. CloudNativePG's <cluster>-app Secret). The chart ships no default password.
{{- end }}

{{/* Render-time checks with clear messages (called from the Deployment template). */}}
{{- define "post-service.validate" -}}
{{- if and (include "post-service.chartSecret" .) (not .Values.database.url) }}
{{- fail (include "post-service.dbUrlRequired" .) }}
{{- end }}
{{- if and .Values.database.credentials.secret (not .Values.database.credentials.host) }}
{{- fail "\n\npost-service: database.credentials.host is required with database.credentials.secret (e.g. <cluster>-rw)." }}
{{- end }}
{{- $grace := int .Values.config.SHUTDOWN_GRACE_SECONDS }}
{{- $pause := int .Values.lifecycle.preStopPauseSeconds }}
{{- if le (int .Values.terminationGracePeriodSeconds) (add $grace $pause) }}
{{- fail (printf "\n\npost-service: terminationGracePeriodSeconds (%d) must be greater than config.SHUTDOWN_GRACE_SECONDS (%d) + lifecycle.preStopPauseSeconds (%d), or the kubelet kills the pod mid-drain." (int .Values.terminationGracePeriodSeconds) $grace $pause) }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) }}
{{- fail "\n\npost-service: set only one of podDisruptionBudget.minAvailable and podDisruptionBudget.maxUnavailable (null the other)." }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "\n\npost-service: autoscaling.minReplicas must not exceed autoscaling.maxReplicas." }}
{{- end }}
{{- end }}

{{/* OTEL_RESOURCE_ATTRIBUTES, built from the downward-API variables defined before it. */}}
{{- define "post-service.otelResourceAttributes" -}}
{{- $attrs := list "k8s.pod.name=$(K8S_POD_NAME)" "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" "k8s.node.name=$(K8S_NODE_NAME)" }}
{{- $attrs = append $attrs .workload }}
{{- $attrs = append $attrs (printf "service.version=%s" (include "post-service.imageTag" .root)) }}
{{- range $key, $value := .root.Values.otelResourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $key (include "post-service.scalar" $value)) }}
{{- end }}
{{- join "," $attrs }}
{{- end }}

{{/* Pod-level security context (restricted Pod Security Standard). */}}
{{- define "post-service.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level security context (restricted Pod Security Standard). */}}
{{- define "post-service.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The settings every post-service container gets: ConfigMap, DB_URL, downward API, OTel. */}}
{{- define "post-service.envFrom" -}}
- configMapRef:
    name: {{ .configMapName }}
{{- with .root.Values.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "post-service.env" -}}
{{- $credentials := .root.Values.database.credentials }}
{{- if $credentials.secret }}
{{- range $name, $key := dict "DB_SECRET_USERNAME" $credentials.usernameKey "DB_SECRET_PASSWORD" $credentials.passwordKey "DB_SECRET_DBNAME" $credentials.dbnameKey }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $credentials.secret }}
      key: {{ $key }}
{{- end }}
- name: DB_URL
  value: {{ include "post-service.credentialsUrl" (dict "host" $credentials.host "port" $credentials.port) | quote }}
{{- if and .reads $credentials.readHost }}
- name: DB_READ_URL
  value: {{ include "post-service.credentialsUrl" (dict "host" $credentials.readHost "port" $credentials.port) | quote }}
{{- end }}
{{- else }}
- name: DB_URL
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ include "post-service.dbSecretKey" .root }}
{{- $readKey := include "post-service.dbReadSecretKey" .root }}
{{- if and .reads $readKey }}
- name: DB_READ_URL
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ $readKey }}
{{- end }}
{{- end }}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ include "post-service.otelResourceAttributes" . | quote }}
{{- with .root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Migrations ---------------------------------------------------------------------------- */}}

{{- define "post-service.migrationsHook" -}}
{{- and .Values.migrations.enabled (eq .Values.migrations.mode "hook") }}
{{- end }}

{{/* Annotations making an object part of the pre-install/pre-upgrade hook phase. */}}
{{- define "post-service.hookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end }}

{{/* Monitoring ---------------------------------------------------------------------------- */}}

{{- define "post-service.monitoringApi" -}}
{{- .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}
{{- end }}
