{{/* The parts the mutating and the validating webhook share. */}}
{{- define "hourglass.webhookCommon" -}}
admissionReviewVersions: [v1]
sideEffects: None
failurePolicy: Fail
matchPolicy: Equivalent
timeoutSeconds: {{ .root.Values.webhook.timeoutSeconds }}
clientConfig:
  service:
    name: {{ include "hourglass.serviceName" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: 9443
  {{- with .caBundle }}
  caBundle: {{ . }}
  {{- end }}
rules:
  - apiGroups: [hourglass.dev]
    apiVersions: [v1alpha1]
    operations: [CREATE, UPDATE]
    resources: [accessrequests]
    scope: Namespaced
  - apiGroups: [hourglass.dev]
    apiVersions: [v1alpha1]
    operations: [UPDATE]
    resources: [accessrequests/status]
    scope: Namespaced
  - apiGroups: [hourglass.dev]
    apiVersions: [v1alpha1]
    operations: [CREATE, UPDATE]
    resources: [accesspolicies]
    scope: Namespaced
  - apiGroups: [hourglass.dev]
    apiVersions: [v1alpha1]
    operations: [CREATE, UPDATE]
    resources: [clusteraccesspolicies]
    scope: Cluster
{{- end }}
{{- define "hourglass.webhookMetadata" -}}
name: {{ include "hourglass.fullname" .root }}
labels:
  {{- include "hourglass.labels" .root | nindent 2 }}
{{- if .root.Values.certManager.enabled }}
annotations:
  cert-manager.io/inject-ca-from: {{ .root.Release.Namespace }}/{{ include "hourglass.certificateName" .root }}
{{- end }}
{{- end }}
