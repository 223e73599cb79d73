{{/*
Chart name, truncated to 63 characters (the DNS-label limit of some fields).
*/}}
{{- define "sequence-kafka-connector.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated to 63 characters. If the release name
already contains the chart name it is used as is.
*/}}
{{- define "sequence-kafka-connector.fullname" -}}
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

{{/*
Chart label value: name-version.
*/}}
{{- define "sequence-kafka-connector.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: immutable once a Deployment exists, so nothing here may
change between upgrades (no version, no chart label).
*/}}
{{- define "sequence-kafka-connector.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sequence-kafka-connector.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels: selector labels plus the ones that may change.
*/}}
{{- define "sequence-kafka-connector.labels" -}}
helm.sh/chart: {{ include "sequence-kafka-connector.chart" . }}
{{ include "sequence-kafka-connector.selectorLabels" . }}
app.kubernetes.io/version: {{ include "sequence-kafka-connector.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sequence-kafka-connector
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Service account name.
*/}}
{{- define "sequence-kafka-connector.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sequence-kafka-connector.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image tag: image.tag, falling back to the chart's appVersion.
*/}}
{{- define "sequence-kafka-connector.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
Full image reference; a digest wins over the tag.
*/}}
{{- define "sequence-kafka-connector.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "sequence-kafka-connector.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the credentials (existing or chart-created).
*/}}
{{- define "sequence-kafka-connector.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- include "sequence-kafka-connector.fullname" . }}
{{- end }}
{{- end }}

{{/*
The connector's config.yaml, rendered from .Values.config. Shared by the
ConfigMap and the pre-upgrade hook's own ConfigMap so both hold the same text.
*/}}
{{- define "sequence-kafka-connector.configYaml" -}}
{{- if not .Values.config.observe.metrics_port }}
{{- fail "config.observe.metrics_port must be set: the probes and the Service use it" }}
{{- end }}
{{- toYaml .Values.config }}
{{- end }}

{{/*
Secret data (chart-created Secret only): only the credentials that are set.
*/}}
{{- define "sequence-kafka-connector.secretData" -}}
{{- $s := .Values.secrets }}
{{- with $s.sequenceApiKey }}
{{ $s.keys.sequenceApiKey }}: {{ . | b64enc | quote }}
{{- end }}
{{- with $s.kafkaSaslPassword }}
{{ $s.keys.kafkaSaslPassword }}: {{ . | b64enc | quote }}
{{- end }}
{{- with $s.schemaRegistryBasicAuth }}
{{ $s.keys.schemaRegistryBasicAuth }}: {{ . | b64enc | quote }}
{{- end }}
{{- end }}

{{/*
Credential env vars, by secretKeyRef only. The API key is required (a missing
key stops the pod with a clear event); the others are optional.
Call with (dict "ctx" $ "secretName" NAME).
*/}}
{{- define "sequence-kafka-connector.secretEnv" -}}
{{- $keys := .ctx.Values.secrets.keys -}}
- name: SEQUENCE_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ $keys.sequenceApiKey }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ $keys.kafkaSaslPassword }}
      optional: true
- name: SCHEMA_REGISTRY_BASIC_AUTH
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ $keys.schemaRegistryBasicAuth }}
      optional: true
{{- end }}

{{/*
Volumes shared by the connector pod and the hook Job (config name passed in).
Call with (dict "ctx" $ "configMap" NAME).
*/}}
{{- define "sequence-kafka-connector.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .ctx.Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ required "tls.secretName is required when tls.enabled is true" .ctx.Values.tls.secretName }}
    defaultMode: 0440
{{- end }}
{{- with .ctx.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "sequence-kafka-connector.volumeMounts" -}}
- name: config
  mountPath: /etc/sequence-connector/config.yaml
  subPath: config.yaml
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: {{ .Values.tls.mountPath }}
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels for pods that must not match the Service or NetworkPolicy selector
(hook Job, helm test): no app.kubernetes.io/name.
Call with (dict "ctx" $ "component" NAME).
*/}}
{{- define "sequence-kafka-connector.auxLabels" -}}
helm.sh/chart: {{ include "sequence-kafka-connector.chart" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: sequence-kafka-connector
app.kubernetes.io/component: {{ .component }}
{{- end }}
