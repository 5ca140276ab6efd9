{{/* The base name of every object: the release name when it already contains "hourglass". */}}
{{- define "hourglass.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "hourglass.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hourglass.labels" -}}
{{ include "hourglass.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: hourglass
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "hourglass.serviceAccountName" -}}
{{ include "hourglass.fullname" . }}
{{- end -}}

{{/* The Service that serves the webhook, OIDC discovery, JWKS and /introspect. */}}
{{- define "hourglass.serviceName" -}}
{{ include "hourglass.fullname" . }}
{{- end -}}

{{- define "hourglass.tlsSecretName" -}}
{{ include "hourglass.fullname" . }}-tls
{{- end -}}

{{- define "hourglass.certificateName" -}}
{{ include "hourglass.fullname" . }}-serving
{{- end -}}

{{- define "hourglass.issuer" -}}
{{- .Values.issuer | default (printf "https://%s.%s.svc" (include "hourglass.serviceName" .) .Release.Namespace) -}}
{{- end -}}

{{- define "hourglass.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The DNS names the serving certificate must carry. */}}
{{- define "hourglass.dnsNames" -}}
{{- $svc := include "hourglass.serviceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end -}}

{{/* Cross-field checks. The schema repeats those it can express (helm lint ignores fail), and
     these still hold under --skip-schema-validation. */}}
{{- define "hourglass.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicas is %d but leaderElection.enabled is false: more than one replica needs leader election" (int .Values.replicas)) -}}
{{- end -}}
{{- if ge (int .Values.tls.selfSigned.renewBeforeDays) (int .Values.tls.selfSigned.validityDays) -}}
{{- fail "tls.selfSigned.renewBeforeDays must be less than tls.selfSigned.validityDays" -}}
{{- end -}}
{{- if and .Values.webhook.networkPolicy.enabled (not .Values.webhook.networkPolicy.from) -}}
{{- fail "webhook.networkPolicy.from must name who may reach the admission port (the API server) when webhook.networkPolicy.enabled is true" -}}
{{- end -}}
{{- if and .Values.certManager.enabled .Values.certManager.issuerRef (not .Values.certManager.issuerRef.name) -}}
{{- fail "certManager.issuerRef.name is required when certManager.issuerRef is set" -}}
{{- end -}}
{{- end -}}
