{{/*
Names are fixed, not derived from the release: the operator looks for Service airlock-webhook,
Secrets airlock-signing-key and airlock-webhook-tls and Lease airlock-operator in its namespace,
and the webhook configurations and ClusterRoles are cluster-wide singletons. One release per cluster.
*/}}

{{/* Labels on every object. */}}
{{- define "airlock.labels" -}}
app.kubernetes.io/name: airlock
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Labels on the operator's objects; the selector labels are a stable subset. */}}
{{- define "airlock.operatorLabels" -}}
{{ include "airlock.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "airlock.operatorSelector" -}}
app.kubernetes.io/name: airlock
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels on the webhook configurations: the builder's (operator/webhook/configurations.ts) and ours. */}}
{{- define "airlock.webhookLabels" -}}
{{ include "airlock.labels" . }}
app.kubernetes.io/component: webhook
{{- end }}

{{/*
A webhook's namespaceSelector: never the release namespace; with enabledOnly, only namespaces
labelled airlock.dev/inject=enabled. Argument: dict "namespace" NS "enabledOnly" BOOL.
*/}}
{{- define "airlock.webhookNamespaceSelector" -}}
matchExpressions:
  {{- if .enabledOnly }}
  - key: airlock.dev/inject
    operator: In
    values: [enabled]
  {{- end }}
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: [{{ .namespace | quote }}]
{{- end }}

{{/* What every webhook shares. Argument: the failurePolicy (webhook.failurePolicy). */}}
{{- define "airlock.webhookCommon" -}}
admissionReviewVersions: [v1]
sideEffects: None
failurePolicy: {{ . }}
matchPolicy: Equivalent
timeoutSeconds: 10
{{- end }}

{{/* Labels on the monitoring objects. */}}
{{- define "airlock.monitoringLabels" -}}
{{ include "airlock.labels" . }}
app.kubernetes.io/component: monitoring
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The image the operator runs and injects. */}}
{{- define "airlock.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Where the upstream CA bundle is mounted. */}}
{{- define "airlock.upstreamCADir" -}}
/etc/airlock/upstream-ca
{{- end }}
