{{/* Names and labels shared by every object of the chart. */}}

{{- define "msctl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "msctl.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the daemon's pods (deployments, Service, PDB, anti-affinity). */}}
{{- define "msctl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "msctl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: sync
{{- end -}}

{{- define "msctl.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "msctl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "msctl.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "msctl.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The daemons to run, as a YAML list of {name, namespace, lease}: one for every namespace when
watchNamespaces is empty (msctl run watches one namespace or all), else one per namespace.
*/}}
{{- define "msctl.daemons" -}}
{{- $full := include "msctl.fullname" . -}}
{{- if .Values.watchNamespaces }}
{{- range .Values.watchNamespaces }}
- name: {{ printf "%s-%s" $full . | trunc 63 | trimSuffix "-" }}
  namespace: {{ . }}
  lease: {{ printf "%s-%s" $.Values.leaderElection.leaseName . | trunc 253 }}
{{- end }}
{{- else }}
- name: {{ $full }}
  namespace: ""
  lease: {{ .Values.leaderElection.leaseName }}
{{- end }}
{{- end -}}
