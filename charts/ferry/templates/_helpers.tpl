{{/* The name of most objects: the release name when it says ferry, else <release>-ferry. */}}
{{- define "ferry.fullname" -}}
{{- if contains "ferry" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-ferry" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Cluster-scoped names carry the namespace, so two releases never share one. */}}
{{- define "ferry.clusterName" -}}
{{- printf "%s-%s" (include "ferry.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: ferry
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ferry.labels" -}}
{{ include "ferry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* repository:tag, or repository@sha256:... when the tag is a digest. */}}
{{- define "ferry.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if hasPrefix "sha256:" $tag -}}
{{- printf "%s@%s" .Values.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* What ferry does with its Stacks (namespaced rules; in a Role, or a ClusterRole with watchAllNamespaces). */}}
{{- define "ferry.stackRules" -}}
- apiGroups: ["ferry.dev"]
  resources: ["stacks"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["ferry.dev"]
  resources: ["stacks/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- with .Values.secretNames }}
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ toJson . }}
  verbs: ["get"]
{{- end }}
- apiGroups: [""]
  resources: ["serviceaccounts/token"]
  resourceNames: [{{ .Values.manager.serviceAccountName | quote }}]
  verbs: ["create"]
{{- end -}}
