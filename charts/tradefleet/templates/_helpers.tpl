{{/* Names ------------------------------------------------------------------------- */}}
{{- define "tradefleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-wide prefix of every object; trimmed so "-timescaledb" etc. still fit 63. */}}
{{- define "tradefleet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>"; call with (dict "ctx" $ "component" "risk"). */}}
{{- define "tradefleet.componentName" -}}
{{- printf "%s-%s" (include "tradefleet.fullname" .ctx) .component -}}
{{- end -}}

{{/* Labels ------------------------------------------------------------------------ */}}
{{- define "tradefleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tradefleet.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tradefleet.labels" -}}
{{ include "tradefleet.selectorLabels" . }}
app.kubernetes.io/part-of: tradefleet
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Images ------------------------------------------------------------------------ */}}
{{- define "tradefleet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* URLs other pods use (bots run in other namespaces: names carry the namespace) ---- */}}
{{- define "tradefleet.natsUrl" -}}
{{- if .Values.nats.enabled -}}
{{- printf "nats://%s.%s.svc:4222" (include "tradefleet.componentName" (dict "ctx" . "component" "nats")) .Release.Namespace -}}
{{- else -}}
{{- required "nats.url is required when nats.enabled is false (nats://host:4222 of a NATS with JetStream)" .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{- define "tradefleet.exsimUrl" -}}
{{- if .Values.exsim.enabled -}}
{{- printf "http://%s.%s.svc:%d" (include "tradefleet.componentName" (dict "ctx" . "component" "exsim")) .Release.Namespace (int .Values.exsim.port) -}}
{{- else -}}
{{- .Values.exsim.url -}}
{{- end -}}
{{- end -}}

{{- define "tradefleet.timescaledbHost" -}}
{{- printf "%s.%s.svc" (include "tradefleet.componentName" (dict "ctx" . "component" "timescaledb")) .Release.Namespace -}}
{{- end -}}

{{- define "tradefleet.timescaledbSecret" -}}
{{- default (include "tradefleet.componentName" (dict "ctx" . "component" "timescaledb")) .Values.timescaledb.existingSecret -}}
{{- end -}}

{{/* Security: what every tradefleet pod runs with (mirrors tradefleet.operator.builders:
     UID 10001, read-only root, no capabilities, seccomp RuntimeDefault). ------------ */}}
{{- define "tradefleet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 10001 }}
runAsGroup: {{ .uid | default 10001 }}
fsGroup: {{ .uid | default 10001 }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "tradefleet.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Env every tradefleet process gets. */}}
{{- define "tradefleet.commonEnv" -}}
- name: NATS_URL
  value: {{ include "tradefleet.natsUrl" . | quote }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- with .Values.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Scheduling and pull secrets shared by every pod. */}}
{{- define "tradefleet.podScheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A probe on a named port; call with (dict "path" "/healthz" "port" "metrics" ...). */}}
{{- define "tradefleet.httpProbe" -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
periodSeconds: {{ .period | default 10 }}
timeoutSeconds: 2
failureThreshold: {{ .failures | default 3 }}
{{- end -}}
