{{/*
The smsauth sidecar for applications: the verification endpoint next to an application's
container, serving the identity stores of its namespace from the smsauth-bundle Secret that the
controller publishes, with the code-hashing keys of the smsauth-code-keys Secret.

This file is self-contained (it uses no other template of the chart), so an application chart may
either depend on the smsauth chart (with controller.enabled=false) or copy this one file into its
templates/. Both templates take a dict:

  config  the sidecar's settings (the `sidecar` block of the smsauth chart's values.yaml documents
          every key and its default); keys left out keep their default. Optional.
  native  true (the default): render a native sidecar, to put under initContainers (restartPolicy
          Always; Kubernetes 1.29 or newer): it starts before the application's containers and
          stops after them. false: a regular container, to put under containers.

  spec:
    initContainers:
      {{- include "smsauth.sidecar" (dict "config" .Values.smsauth "native" true) | nindent 6 }}
    containers:
      - name: app
        env:
          - name: SMSAUTH_URL
            value: http://127.0.0.1:8787
    volumes:
      {{- include "smsauth.sidecarVolumes" (dict "config" .Values.smsauth) | nindent 6 }}
*/}}

{{/* smsauth.sidecar.defaults are the sidecar's settings when the config leaves them out. */}}
{{- define "smsauth.sidecar.defaults" -}}
image:
  repository: smsauth
  tag: "0.1.0"
  pullPolicy: IfNotPresent
bundleDir: /etc/smsauth/bundle
codeKeysDir: /etc/smsauth/keys
host: 127.0.0.1
port: 8787
probePort: 8788
tokenSecretRef:
  name: ""
  key: token
helpdeskTokenSecretRef:
  name: ""
  key: token
trustedProxies: []
historyRetention: 400d
redis:
  url: ""
  urlSecretRef:
    name: ""
    key: url
ephemeral: false
allowConsole: false
twilioCompat:
  enabled: false
logLevel: info
resources:
  requests:
    cpu: 20m
    memory: 96Mi
  limits:
    cpu: 500m
    memory: 256Mi
securityContext:
  runAsUser: 10001
  runAsGroup: 10001
tmpSizeLimit: 64Mi
{{- end }}

{{/* smsauth.sidecar.config is the config merged over the defaults, as YAML; unknown keys fail. */}}
{{- define "smsauth.sidecar.config" -}}
{{- $defaults := include "smsauth.sidecar.defaults" . | fromYaml }}
{{- $given := deepCopy (.config | default dict) }}
{{- range $key, $value := $given }}
{{- if not (hasKey $defaults $key) }}
{{- fail (printf "smsauth.sidecar: unknown setting %q (known: %s)" $key (keys $defaults | sortAlpha | join ", ")) }}
{{- end }}
{{- $default := get $defaults $key }}
{{- if and (kindIs "map" $default) (ne $key "resources") }}
{{- if not (kindIs "map" $value) }}
{{- fail (printf "smsauth.sidecar: %s must be a map" $key) }}
{{- end }}
{{- range $sub, $_ := $value }}
{{- if not (hasKey $default $sub) }}
{{- fail (printf "smsauth.sidecar: unknown setting %s.%s (known: %s)" $key $sub (keys $default | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $c := mustMergeOverwrite $defaults $given }}
{{- if not (has (toString $c.host) (list "127.0.0.1" "0.0.0.0")) }}
{{- fail (printf "smsauth.sidecar: host must be 127.0.0.1 (the pod only) or 0.0.0.0 (with tokenSecretRef), not %v" $c.host) }}
{{- end }}
{{- if and (ne (toString $c.host) "127.0.0.1") (not $c.tokenSecretRef.name) }}
{{- fail "smsauth.sidecar: listening beyond loopback needs a bearer token: set tokenSecretRef.name" }}
{{- end }}
{{- if and $c.helpdeskTokenSecretRef.name (eq $c.helpdeskTokenSecretRef.name $c.tokenSecretRef.name) (eq $c.helpdeskTokenSecretRef.key $c.tokenSecretRef.key) }}
{{- fail "smsauth.sidecar: helpdeskTokenSecretRef names the application's token; give the helpdesk a token of its own" }}
{{- end }}
{{- if and $c.redis.url $c.redis.urlSecretRef.name }}
{{- fail "smsauth.sidecar: set redis.url or redis.urlSecretRef, not both" }}
{{- end }}
{{- if and (not $c.redis.url) (not $c.redis.urlSecretRef.name) (not $c.ephemeral) }}
{{- fail "smsauth.sidecar: enrollments and pending verifications need state that outlives the pod and is shared by its replicas: set redis.urlSecretRef.name (or redis.url); ephemeral: true keeps them in the pod's emptyDir instead, lost when the pod goes (development only)" }}
{{- end }}
{{- if eq (int $c.probePort) (int $c.port) }}
{{- fail "smsauth.sidecar: probePort must differ from port" }}
{{- end }}
{{- toYaml $c }}
{{- end }}

{{/* smsauth.sidecar renders the sidecar container, one list item (see the top of this file). */}}
{{- define "smsauth.sidecar" -}}
{{- $c := include "smsauth.sidecar.config" . | fromYaml }}
{{- if hasKey $c "Error" }}
{{- fail (printf "smsauth.sidecar: %s" (get $c "Error")) }}
{{- end }}
{{- $native := true }}
{{- if hasKey . "native" }}
{{- $native = .native }}
{{- end }}
{{- $port := int $c.port }}
- name: smsauth
  image: {{ printf "%s:%s" $c.image.repository (toString $c.image.tag) | quote }}
  imagePullPolicy: {{ $c.image.pullPolicy }}
  {{- if $native }}
  # A native sidecar: started before the application's containers, stopped after them.
  restartPolicy: Always
  {{- end }}
  args:
    - sidecar
    - --bundle-dir={{ $c.bundleDir }}
    - --code-keys-dir={{ $c.codeKeysDir }}
    - --host={{ $c.host }}
    - --port={{ $port }}
    - --health-probe-bind-address=:{{ int $c.probePort }}
    {{- /* A URL from a Secret reaches the sidecar as SMSAUTH_REDIS_URL only: in an argument its password would show in the process list. */}}
    {{- if $c.redis.url }}
    - {{ printf "--redis=%s" $c.redis.url | quote }}
    {{- end }}
    {{- if $c.allowConsole }}
    - --allow-console
    {{- end }}
    {{- if $c.twilioCompat.enabled }}
    - --twilio-compat
    {{- end }}
    - --log-level={{ $c.logLevel }}
    {{- if $c.trustedProxies }}
    - {{ printf "--trusted-proxies=%s" (join "," $c.trustedProxies) | quote }}
    {{- end }}
    - --history-retention={{ $c.historyRetention }}
  {{- if or $c.redis.urlSecretRef.name $c.tokenSecretRef.name $c.helpdeskTokenSecretRef.name }}
  env:
    {{- if $c.redis.urlSecretRef.name }}
    - name: SMSAUTH_REDIS_URL
      valueFrom:
        secretKeyRef:
          name: {{ $c.redis.urlSecretRef.name }}
          key: {{ $c.redis.urlSecretRef.key }}
    {{- end }}
    {{- if $c.tokenSecretRef.name }}
    - name: SMSAUTH_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ $c.tokenSecretRef.name }}
          key: {{ $c.tokenSecretRef.key }}
    {{- end }}
    {{- if $c.helpdeskTokenSecretRef.name }}
    - name: SMSAUTH_HELPDESK_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ $c.helpdeskTokenSecretRef.name }}
          key: {{ $c.helpdeskTokenSecretRef.key }}
    {{- end }}
  {{- end }}
  ports:
    - name: smsauth
      containerPort: {{ $port }}
      protocol: TCP
    # /healthz and /readyz alone, for the kubelet: the endpoint itself listens on the pod's loopback.
    - name: smsauth-health
      containerPort: {{ int $c.probePort }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /healthz
      port: smsauth-health
    periodSeconds: 2
    timeoutSeconds: 5
    failureThreshold: 30
  livenessProbe:
    httpGet:
      path: /healthz
      port: smsauth-health
    periodSeconds: 20
    timeoutSeconds: 5
    failureThreshold: 3
  readinessProbe:
    # Ready once a bundle is loaded and the state store answers.
    httpGet:
      path: /readyz
      port: smsauth-health
    periodSeconds: 10
    timeoutSeconds: 5
    failureThreshold: 3
  resources:
    {{- toYaml $c.resources | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ int $c.securityContext.runAsUser }}
    runAsGroup: {{ int $c.securityContext.runAsGroup }}
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    privileged: false
    capabilities:
      drop:
        - ALL
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    # Whole Secret volumes, never subPath: the kubelet swaps them atomically and the sidecar follows.
    - name: smsauth-bundle
      mountPath: {{ $c.bundleDir }}
      readOnly: true
    - name: smsauth-code-keys
      mountPath: {{ $c.codeKeysDir }}
      readOnly: true
    # The root filesystem is read-only; SQLite state (ephemeral: true, without Redis) lives in /tmp.
    - name: smsauth-tmp
      mountPath: /tmp
{{- end }}

{{/* smsauth.sidecarVolumes renders the sidecar's volumes, list items for the pod's volumes. */}}
{{- define "smsauth.sidecarVolumes" -}}
{{- $c := include "smsauth.sidecar.config" . | fromYaml }}
{{- if hasKey $c "Error" }}
{{- fail (printf "smsauth.sidecar: %s" (get $c "Error")) }}
{{- end }}
- name: smsauth-bundle
  secret:
    secretName: smsauth-bundle
- name: smsauth-code-keys
  secret:
    secretName: smsauth-code-keys
- name: smsauth-tmp
  emptyDir:
    sizeLimit: {{ $c.tmpSizeLimit }}
{{- end }}
