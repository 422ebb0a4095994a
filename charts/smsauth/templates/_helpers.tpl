{{/*
Helpers of the controller's templates. The sidecar's templates are in _sidecar.tpl, which needs
none of these: an application chart may copy that one file alone.
*/}}

{{/* smsauth.name is the chart name, unless nameOverride is set. */}}
{{- define "smsauth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* smsauth.fullname prefixes the controller's resources: RELEASE-smsauth, or RELEASE when it already says smsauth. */}}
{{- define "smsauth.fullname" -}}
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

{{/* smsauth.selectorLabels select the controller's pods; they never change across upgrades. */}}
{{- define "smsauth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smsauth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/* smsauth.labels go on every resource of the chart. */}}
{{- define "smsauth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "smsauth.selectorLabels" . }}
app.kubernetes.io/part-of: smsauth
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* smsauth.metricsServiceName is the metrics Service, which the serving certificate and the ServiceMonitor name too. */}}
{{- define "smsauth.metricsServiceName" -}}
{{- include "smsauth.fullname" . | trunc 55 | trimSuffix "-" }}-metrics
{{- end }}

{{/* smsauth.tlsSecretName is the serving certificate's Secret (the webhook's and /metrics'), mounted by the pods. */}}
{{- define "smsauth.tlsSecretName" -}}
{{- include "smsauth.fullname" . | trunc 59 | trimSuffix "-" }}-tls
{{- end }}

{{/* smsauth.serviceAccountName is the controller's service account. */}}
{{- define "smsauth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "smsauth.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false: name an existing service account" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* smsauth.image is the image reference: a digest when pinned, else the tag (default: the chart's appVersion). */}}
{{- define "smsauth.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* smsauth.watchNamespace is the one namespace a namespaced install watches (default: the release namespace). */}}
{{- define "smsauth.watchNamespace" -}}
{{- .Values.watchNamespace | default .Release.Namespace }}
{{- end }}

{{/* smsauth.podSecurityContext is the restricted Pod Security profile at the pod level. */}}
{{- define "smsauth.podSecurityContext" -}}
{{- $base := dict "runAsNonRoot" true "runAsUser" .Values.controller.securityContext.runAsUser "runAsGroup" .Values.controller.securityContext.runAsGroup "fsGroup" .Values.controller.securityContext.runAsGroup "seccompProfile" (dict "type" "RuntimeDefault") }}
{{- toYaml (mustMergeOverwrite (deepCopy .Values.controller.podSecurityContext) $base) }}
{{- end }}

{{/* smsauth.containerSecurityContext is the restricted Pod Security profile at the container level. */}}
{{- define "smsauth.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.controller.securityContext.runAsUser }}
runAsGroup: {{ .Values.controller.securityContext.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}
