{{/* The release's name for its objects, within the 63 characters of a DNS label. */}}
{{- define "soarkafka.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "soarkafka.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "soarkafka.labels" -}}
{{ include "soarkafka.selectorLabels" . }}
app.kubernetes.io/version: {{ include "soarkafka.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "soarkafka.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{/*
soarkafka.validate fails the render on values that would deploy something
broken, naming the value and the fix. Replicas share their state only through
PostgreSQL, and each must hold the same secret key and API token: without a
Secret every replica would run its own SQLite file and generate its own key
and token.
*/}}
{{- define "soarkafka.validate" -}}
{{- $replicas := int .Values.replicaCount -}}
{{- $s := .Values.secret | default dict -}}
{{- $keys := $s.keys | default dict -}}
{{- if gt $replicas 1 -}}
{{- if not $s.existingSecret -}}
{{- fail (printf "replicaCount: %d replicas need PostgreSQL, but secret.existingSecret is empty, so each would run its own SQLite database; create a Secret with database-url (postgres://...), secret-key and api-token and set secret.existingSecret to its name, or set replicaCount to 1" $replicas) -}}
{{- end -}}
{{- range $field := list "databaseURL" "secretKey" "apiToken" -}}
{{- if not (get $keys $field) -}}
{{- fail (printf "secret.keys.%s: empty, but replicaCount %d replicas must all read it from the Secret %q; name the key that holds it" $field $replicas $s.existingSecret) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $k, $v := .Values.config -}}
{{- if has $k (list "database_url" "secret_key" "api_token" "console.password") -}}
{{- fail (printf "config.%s: a secret does not belong in values; put it in the Secret named by secret.existingSecret (secret.keys)" $k) -}}
{{- end -}}
{{- if has $k (list "listen" "data_dir" "replica_name" "metrics.public" "shutdown_timeout") -}}
{{- fail (printf "config.%s: the chart sets this key itself (see containerPort, data, metrics.scrape, shutdownTimeout in values.yaml); remove it from config" $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* soarkafka.envValue renders a config value as the server reads it from its environment. */}}
{{- define "soarkafka.envValue" -}}
{{- if kindIs "slice" . -}}
{{- join "," . -}}
{{- else if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}
