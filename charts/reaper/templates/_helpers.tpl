{{/*
reaper.name is the chart name, or nameOverride, cut to the 63 characters of a label value.
*/}}
{{- define "reaper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
reaper.fullname is the prefix of every object name: fullnameOverride, or the release name
followed by the chart name unless the release name contains it. It is cut to 50 characters so
that the longest suffix, "-controller-config", still fits in a 63-character name.
*/}}
{{- define "reaper.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
reaper.selectorLabels are the labels that never change over the life of a release. Selectors
use only these, because a Deployment's selector is immutable.
*/}}
{{- define "reaper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reaper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
reaper.labels are the labels of every object.
*/}}
{{- define "reaper.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "reaper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: reaper
{{- end }}

{{/*
reaper.controllerName names the controller's Deployment, ServiceAccount default, Roles and
bindings.
*/}}
{{- define "reaper.controllerName" -}}
{{- printf "%s-controller" (include "reaper.fullname" .) }}
{{- end }}

{{- define "reaper.agentRoleName" -}}
{{- printf "%s-agent" (include "reaper.fullname" .) }}
{{- end }}

{{- define "reaper.configMapName" -}}
{{- printf "%s-controller-config" (include "reaper.fullname" .) }}
{{- end }}

{{- define "reaper.controllerServiceAccountName" -}}
{{- default (include "reaper.controllerName" .) .Values.controller.serviceAccount.name }}
{{- end }}

{{/*
reaper.imageRef turns an image value with repository, tag and digest into a reference. The
digest wins over the tag, and an empty tag is the chart's appVersion. Call it with
(dict "image" IMAGE "chart" .Chart).
*/}}
{{- define "reaper.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{- define "reaper.image" -}}
{{- include "reaper.imageRef" (dict "image" .Values.image "chart" .Chart) }}
{{- end }}

{{/*
reaper.agentImage is agent.image, or the controller's image when its repository is empty.
*/}}
{{- define "reaper.agentImage" -}}
{{- if .Values.agent.image.repository }}
{{- include "reaper.imageRef" (dict "image" .Values.agent.image "chart" .Chart) }}
{{- else }}
{{- include "reaper.image" . }}
{{- end }}
{{- end }}

{{/*
reaper.podSecurityContext and reaper.containerSecurityContext meet the restricted Pod Security
level: non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp and a
read-only root filesystem. 65532 is the nonroot user of distroless images.
*/}}
{{- define "reaper.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "reaper.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
{{- end }}

{{/*
reaper.config is the controller's config file, in the format of controllers.Config. Every
field is written out, so the file shows what the controller runs with.
*/}}
{{- define "reaper.config" -}}
{{- $agent := .Values.agent }}
{{- $protectedName := "" }}
{{- if .Values.runtimeClasses.protected.enabled }}
{{- $protectedName = .Values.runtimeClasses.protected.name }}
{{- end }}
{{- $agentConfig := dict
  "name" $agent.name
  "image" (include "reaper.agentImage" .)
  "imagePullPolicy" .Values.image.pullPolicy
  "serviceAccountName" $agent.serviceAccount.name
  "priorityClassName" $agent.priorityClassName
  "tolerations" $agent.tolerations
  "resources" $agent.resources
  "maxUnavailable" $agent.maxUnavailable
  "hostPaths" $agent.hostPaths
  "installDir" $agent.installDir
  "restartMethod" $agent.restartMethod
  "resyncPeriod" $agent.resyncPeriod
}}
{{- with .Values.imagePullSecrets }}
{{- $_ := set $agentConfig "imagePullSecrets" . }}
{{- end }}
{{- with $agent.containerdConfig }}
{{- $_ := set $agentConfig "containerdConfig" . }}
{{- end }}
{{- with $agent.containerdPIDFile }}
{{- $_ := set $agentConfig "containerdPIDFile" . }}
{{- end }}
{{- with $agent.extraArgs }}
{{- $_ := set $agentConfig "extraArgs" . }}
{{- end }}
{{- $config := dict
  "namespace" .Release.Namespace
  "runtimeClasses" (dict
    "name" .Values.runtimeClasses.name
    "handler" .Values.runtimeClasses.handler
    "protectedName" $protectedName
    "protectedHandler" .Values.runtimeClasses.protected.handler)
  "admission" (dict
    "enabled" .Values.admission.enabled
    "policyName" .Values.admission.policyName
    "namespaceLabel" .Values.admission.namespaceLabel)
  "agent" $agentConfig
}}
{{- with .Values.nodeSelector }}
{{- $_ := set $config "nodeSelector" . }}
{{- end }}
{{- with .Values.admission.agentPolicyName }}
{{- $_ := set $config.admission "agentPolicyName" . }}
{{- end }}
{{- toYaml $config }}
{{- end }}
