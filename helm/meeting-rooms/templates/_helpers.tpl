{{/*
Prefix of every object name: fullnameOverride or the release name (at most 40 characters, so that
"<prefix>-reservation-service" and the Kafka pod names stay valid DNS labels).
*/}}
{{- define "mr.prefix" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "mr.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; call with (dict "ctx" $ "component" "user-service"). */}}
{{- define "mr.labels" -}}
helm.sh/chart: {{ include "mr.chart" .ctx }}
{{ include "mr.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: meeting-rooms
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end -}}

{{- define "mr.selectorLabels" -}}
app.kubernetes.io/name: meeting-rooms
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mr.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-meeting-rooms" (include "mr.prefix" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* One service's settings: serviceDefaults merged with services.<key>; call with (dict "ctx" $ "key" "user"). */}}
{{- define "mr.service" -}}
{{- $svc := mergeOverwrite (deepCopy .ctx.Values.serviceDefaults) (deepCopy (index .ctx.Values.services .key)) -}}
{{- toYaml $svc -}}
{{- end -}}

{{/* A service's pod affinity: its `affinity`, plus anti-affinity between its replicas on
     kubernetes.io/hostname (podAntiAffinity: preferred or required) when it can run more than
     one replica and `affinity` holds no podAntiAffinity of its own; empty when there is none.
     Call with (dict "ctx" $ "svc" <merged service settings>). */}}
{{- define "mr.serviceAffinity" -}}
{{- $svc := .svc -}}
{{- $affinity := deepCopy ($svc.affinity | default dict) -}}
{{- $most := ternary (int $svc.autoscaling.maxReplicas) (int $svc.replicaCount) (and $svc.autoscaling.enabled true) -}}
{{- $mode := $svc.podAntiAffinity | default "none" -}}
{{- if and (gt $most 1) (ne $mode "none") (not (hasKey $affinity "podAntiAffinity")) -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "mr.selectorLabels" (dict "ctx" .ctx "component" $svc.name) | fromYaml)) -}}
{{- if eq $mode "required" -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) -}}
{{- else -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) -}}
{{- end -}}
{{- end -}}
{{- with $affinity }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/* Image of a service; call with (dict "ctx" $ "repository" "meeting-rooms-user-service"). */}}
{{- define "mr.serviceImage" -}}
{{- $tag := toString (default .ctx.Chart.AppVersion .ctx.Values.image.tag) -}}
{{- if .ctx.Values.image.registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" .ctx.Values.image.registry) .repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret holding JWT_SECRET_KEY and GOOGLE_CLIENT_ID/SECRET. */}}
{{- define "mr.appSecretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-meeting-rooms" (include "mr.prefix" .) -}}
{{- end -}}
{{- end -}}

{{/* PostgreSQL: host, port, user, and the Secret/key of the user's password. */}}
{{- define "mr.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "mr.prefix" .) -}}
{{- end -}}

{{- define "mr.postgresql.secretName" -}}
{{- default (include "mr.postgresql.fullname" .) .Values.postgresql.auth.existingSecret -}}
{{- end -}}

{{- define "mr.db.host" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "mr.postgresql.fullname" . -}}
{{- else -}}
{{- required "externalDatabase.host is required when postgresql.enabled=false" .Values.externalDatabase.host -}}
{{- end -}}
{{- end -}}

{{- define "mr.db.port" -}}
{{- if .Values.postgresql.enabled -}}
{{- .Values.postgresql.port -}}
{{- else -}}
{{- .Values.externalDatabase.port -}}
{{- end -}}
{{- end -}}

{{- define "mr.db.user" -}}
{{- if .Values.postgresql.enabled -}}
{{- .Values.postgresql.auth.username -}}
{{- else -}}
{{- required "externalDatabase.user is required when postgresql.enabled=false" .Values.externalDatabase.user -}}
{{- end -}}
{{- end -}}

{{- define "mr.db.sslmode" -}}
{{- if .Values.postgresql.enabled -}}
{{- .Values.postgresql.sslmode -}}
{{- else -}}
{{- /* Unset: verify-full when a CA is given (the certificate and the host name are checked),
       else require (encrypted, not verified). */ -}}
{{- $d := .Values.externalDatabase -}}
{{- $d.sslmode | default (ternary "verify-full" "require" (not (empty $d.tls.caSecret.name))) -}}
{{- end -}}
{{- end -}}

{{- define "mr.db.passwordSecretName" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "mr.postgresql.secretName" . -}}
{{- else -}}
{{- required "externalDatabase.passwordSecret.name is required when postgresql.enabled=false (a Secret holding the database user's password)" .Values.externalDatabase.passwordSecret.name -}}
{{- end -}}
{{- end -}}

{{- define "mr.db.passwordSecretKey" -}}
{{- if .Values.postgresql.enabled -}}
{{- .Values.postgresql.auth.secretKeys.userPasswordKey -}}
{{- else -}}
{{- .Values.externalDatabase.passwordSecret.key -}}
{{- end -}}
{{- end -}}

{{/* The external database's certificates: DATABASE_URL parameters after sslmode, and the volume
     and mount that hold the files (each empty when no certificate is configured). */}}
{{- define "mr.db.tlsParams" -}}
{{- if not .Values.postgresql.enabled -}}
{{- $t := .Values.externalDatabase.tls -}}
{{- if $t.caSecret.name }}&sslrootcert=/etc/meeting-rooms/postgresql/ca.crt{{ end -}}
{{- if $t.clientSecret.name }}&sslcert=/etc/meeting-rooms/postgresql/client.crt&sslkey=/etc/meeting-rooms/postgresql/client.key{{ end -}}
{{- end -}}
{{- end -}}

{{- define "mr.db.tlsVolume" -}}
{{- $t := .Values.externalDatabase.tls -}}
{{- if and (not .Values.postgresql.enabled) (or $t.caSecret.name $t.clientSecret.name) }}
- name: postgresql-tls
  projected:
    # Read-only for the owner (root) and the pod's group: libpq accepts a root-owned key up to 0640.
    defaultMode: 0440
    sources:
      {{- with $t.caSecret.name }}
      - secret:
          name: {{ . }}
          items:
            - key: {{ $t.caSecret.key }}
              path: ca.crt
      {{- end }}
      {{- with $t.clientSecret.name }}
      - secret:
          name: {{ . }}
          items:
            - key: {{ $t.clientSecret.certKey }}
              path: client.crt
            - key: {{ $t.clientSecret.keyKey }}
              path: client.key
      {{- end }}
{{- end }}
{{- end -}}

{{- define "mr.db.tlsMount" -}}
{{- $t := .Values.externalDatabase.tls -}}
{{- if and (not .Values.postgresql.enabled) (or $t.caSecret.name $t.clientSecret.name) }}
- name: postgresql-tls
  mountPath: /etc/meeting-rooms/postgresql
  readOnly: true
{{- end }}
{{- end -}}

{{/* Kafka client security (externalKafka.securityProtocol, .sasl, .tls) for the services and the
     topic Job: environment variables, and the volume and mount of the certificates. */}}
{{- define "mr.kafka.securityEnv" -}}
{{- if not .Values.kafka.enabled -}}
{{- $k := .Values.externalKafka -}}
{{- with $k.securityProtocol }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ . | quote }}
{{- end }}
{{- if $k.sasl.mechanism }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $k.sasl.mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ $k.sasl.username | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.passwordSecret.name }}
      key: {{ $k.sasl.passwordSecret.key }}
{{- end }}
{{- if $k.tls.caSecret.name }}
- name: KAFKA_SSL_CA_LOCATION
  value: /etc/meeting-rooms/kafka/ca.crt
{{- end }}
{{- if $k.tls.clientSecret.name }}
- name: KAFKA_SSL_CERTIFICATE_LOCATION
  value: /etc/meeting-rooms/kafka/client.crt
- name: KAFKA_SSL_KEY_LOCATION
  value: /etc/meeting-rooms/kafka/client.key
{{- end }}
{{- end -}}
{{- end -}}

{{- define "mr.kafka.tlsVolume" -}}
{{- $t := .Values.externalKafka.tls -}}
{{- if and (not .Values.kafka.enabled) (or $t.caSecret.name $t.clientSecret.name) }}
- name: kafka-tls
  projected:
    defaultMode: 0440
    sources:
      {{- with $t.caSecret.name }}
      - secret:
          name: {{ . }}
          items:
            - key: {{ $t.caSecret.key }}
              path: ca.crt
      {{- end }}
      {{- with $t.clientSecret.name }}
      - secret:
          name: {{ . }}
          items:
            - key: {{ $t.clientSecret.certKey }}
              path: client.crt
            - key: {{ $t.clientSecret.keyKey }}
              path: client.key
      {{- end }}
{{- end }}
{{- end -}}

{{- define "mr.kafka.tlsMount" -}}
{{- $t := .Values.externalKafka.tls -}}
{{- if and (not .Values.kafka.enabled) (or $t.caSecret.name $t.clientSecret.name) }}
- name: kafka-tls
  mountPath: /etc/meeting-rooms/kafka
  readOnly: true
{{- end }}
{{- end -}}

{{/* Kafka: the bootstrap servers (comma-separated host:port). */}}
{{- define "mr.kafka.fullname" -}}
{{- printf "%s-kafka" (include "mr.prefix" .) -}}
{{- end -}}

{{- define "mr.kafka.headless" -}}
{{- printf "%s-kafka-headless" (include "mr.prefix" .) -}}
{{- end -}}

{{- define "mr.kafka.brokers" -}}
{{- if .Values.kafka.enabled -}}
{{- $brokers := list -}}
{{- range $i := until (int .Values.kafka.replicas) -}}
{{- $brokers = append $brokers (printf "%s-%d.%s.%s.svc.%s:9092" (include "mr.kafka.fullname" $) $i (include "mr.kafka.headless" $) $.Release.Namespace $.Values.clusterDomain) -}}
{{- end -}}
{{- join "," $brokers -}}
{{- else -}}
{{- $b := required "externalKafka.brokers is required when kafka.enabled=false" .Values.externalKafka.brokers -}}
{{- if kindIs "slice" $b -}}{{ join "," $b }}{{- else -}}{{ $b }}{{- end -}}
{{- end -}}
{{- end -}}

{{/* min.insync.replicas of the bundled Kafka: 2 with three nodes (a write survives one node's
     loss), else 1. */}}
{{- define "mr.kafka.minInsyncReplicas" -}}
{{- ternary 2 1 (ge (int .Values.kafka.replicas) 3) -}}
{{- end -}}

{{- define "mr.kafka.replicationFactor" -}}
{{- if .Values.kafka.topics.replicationFactor -}}
{{- .Values.kafka.topics.replicationFactor -}}
{{- else if .Values.kafka.enabled -}}
{{- min 3 (int .Values.kafka.replicas) -}}
{{- else -}}
3
{{- end -}}
{{- end -}}

{{/* The container securityContext shared by the chart's own non-root containers. */}}
{{- define "mr.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .readOnlyRootFilesystem }}
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "mr.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsGroup }}
fsGroup: {{ .fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Checks of the values, included at the top of every template that needs them so that the first
error is always the same complete list: secrets must come from the caller, never from defaults.
*/}}
{{/* Database connections the three services can hold at once, at most: per service, the
     replicas it can run during a rollout (autoscaling.maxReplicas, else replicaCount, plus the
     one pod the rollout's maxSurge adds) x (dbPoolSize + dbSessionsOutsidePool + webhookSenders
     + mailSenders while config.SMTP_URL is set: reservation-service's senders' own sessions). */}}
{{- define "mr.db.serviceConnections" -}}
{{- $total := 0 -}}
{{- range $key := list "user" "room" "reservation" -}}
{{- $svc := include "mr.service" (dict "ctx" $ "key" $key) | fromYaml -}}
{{- $replicas := ternary (int $svc.autoscaling.maxReplicas) (int $svc.replicaCount) (and $svc.autoscaling.enabled true) -}}
{{- $mail := ternary (int ($svc.mailSenders | default 0)) 0 (not (empty $.Values.config.SMTP_URL)) -}}
{{- $total = add $total (mul (add $replicas 1) (add (int $svc.dbPoolSize) (int $svc.dbSessionsOutsidePool) (int ($svc.webhookSenders | default 0)) $mail)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* max_connections of the bundled PostgreSQL: postgresql.maxConnections, or the services'
     connections + postgresql.connectionHeadroom + superuser_reserved_connections (3). */}}
{{- define "mr.postgresql.maxConnections" -}}
{{- if .Values.postgresql.maxConnections -}}
{{- int .Values.postgresql.maxConnections -}}
{{- else -}}
{{- add (include "mr.db.serviceConnections" . | int) (int .Values.postgresql.connectionHeadroom) 3 -}}
{{- end -}}
{{- end -}}

{{/* The fewest replicas a service runs: autoscaling.minReplicas, else replicaCount; call with
     the merged service settings (mr.service). */}}
{{- define "mr.minReplicas" -}}
{{- ternary (int .autoscaling.minReplicas) (int .replicaCount) (and .autoscaling.enabled true) -}}
{{- end -}}

{{/* A service's disruption budget as (kind count): minAvailable when set (it wins over
     maxUnavailable), else maxUnavailable; count is the pods it means at the service's fewest
     replicas (a percentage rounded up, as Kubernetes does), -1 when neither is set.  Call with
     the merged service settings. */}}
{{- define "mr.pdbBudget" -}}
{{- $pdb := .podDisruptionBudget -}}
{{- $kind := ternary "minAvailable" "maxUnavailable" (not (kindIs "invalid" $pdb.minAvailable)) -}}
{{- $v := index $pdb $kind -}}
{{- $n := include "mr.minReplicas" . | int -}}
{{- $count := -1 -}}
{{- if and (kindIs "string" $v) (hasSuffix "%" $v) -}}
{{- $count = div (add (mul (trimSuffix "%" $v | int) $n) 99) 100 -}}
{{- else if not (kindIs "invalid" $v) -}}
{{- $count = int $v -}}
{{- end -}}
{{- printf "%s %d" $kind $count -}}
{{- end -}}

{{- define "mr.validate" -}}
{{- $errors := list -}}
{{- if not .Values.secrets.existingSecret -}}
{{- if not .Values.secrets.jwtSecretKey -}}
{{- $errors = append $errors "secrets.jwtSecretKey is required (at least 32 bytes; pass it with --set secrets.jwtSecretKey=... or name a Secret in secrets.existingSecret)" -}}
{{- else if lt (len .Values.secrets.jwtSecretKey) 32 -}}
{{- $errors = append $errors "secrets.jwtSecretKey must be at least 32 bytes long" -}}
{{- end -}}
{{- if and .Values.secrets.googleClientId (not .Values.secrets.googleClientSecret) -}}
{{- $errors = append $errors "secrets.googleClientSecret is required when secrets.googleClientId is set" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.postgresql.enabled (not .Values.postgresql.auth.existingSecret) -}}
{{- if not .Values.postgresql.auth.password -}}
{{- $errors = append $errors "postgresql.auth.password is required (the application role's password; or name a Secret in postgresql.auth.existingSecret)" -}}
{{- else if not (regexMatch "^[A-Za-z0-9._~-]+$" .Values.postgresql.auth.password) -}}
{{- $errors = append $errors "postgresql.auth.password may only contain letters, digits and - . _ ~ (it is placed in a postgresql:// URL)" -}}
{{- end -}}
{{- if not .Values.postgresql.auth.postgresPassword -}}
{{- $errors = append $errors "postgresql.auth.postgresPassword is required (the postgres superuser's password; or name a Secret in postgresql.auth.existingSecret)" -}}
{{- end -}}
{{- end -}}
{{- if not .Values.postgresql.enabled -}}
{{- if not .Values.externalDatabase.host -}}
{{- $errors = append $errors "externalDatabase.host is required when postgresql.enabled=false" -}}
{{- end -}}
{{- if not .Values.externalDatabase.user -}}
{{- $errors = append $errors "externalDatabase.user is required when postgresql.enabled=false" -}}
{{- end -}}
{{- if not .Values.externalDatabase.passwordSecret.name -}}
{{- $errors = append $errors "externalDatabase.passwordSecret.name is required when postgresql.enabled=false (a Secret holding the database user's password)" -}}
{{- end -}}
{{- end -}}
{{- if not .Values.kafka.enabled -}}
{{- if not .Values.externalKafka.brokers -}}
{{- $errors = append $errors "externalKafka.brokers is required when kafka.enabled=false" -}}
{{- end -}}
{{- else if not (has (int .Values.kafka.replicas) (list 1 3)) -}}
{{- $errors = append $errors "kafka.replicas must be 1 or 3" -}}
{{- else if .Values.kafka.topics.replicationFactor -}}
{{- $rf := int .Values.kafka.topics.replicationFactor -}}
{{- $nodes := int .Values.kafka.replicas -}}
{{- $minIsr := include "mr.kafka.minInsyncReplicas" . | int -}}
{{- if gt $rf $nodes -}}
{{- $errors = append $errors (printf "kafka.topics.replicationFactor (%d) must be at most kafka.replicas (%d): Kafka cannot place more copies than it has nodes" $rf $nodes) -}}
{{- else if lt $rf $minIsr -}}
{{- $errors = append $errors (printf "kafka.topics.replicationFactor (%d) must be at least the bundled Kafka's min.insync.replicas (%d): the services' producers wait for every in-sync replica (acks=all) and would be refused" $rf $minIsr) -}}
{{- else if and (gt $nodes 1) (le $rf $minIsr) -}}
{{- $errors = append $errors (printf "kafka.topics.replicationFactor (%d) must be at least the bundled Kafka's min.insync.replicas + 1 (%d) with %d nodes: with as many copies as in-sync replicas required, one broker down (a node drain) stops the producers of the partitions it holds (acks=all)" $rf (add $minIsr 1) $nodes) -}}
{{- end -}}
{{- end -}}
{{- $ks := .Values.externalKafka -}}
{{- if and .Values.kafka.enabled (or $ks.securityProtocol $ks.sasl.mechanism $ks.tls.caSecret.name $ks.tls.clientSecret.name) -}}
{{- $errors = append $errors "externalKafka.securityProtocol, .sasl and .tls apply to an external Kafka (kafka.enabled=false); the bundled one speaks PLAINTEXT only" -}}
{{- end -}}
{{- if hasPrefix "SASL_" $ks.securityProtocol -}}
{{- if not (and $ks.sasl.mechanism $ks.sasl.username $ks.sasl.passwordSecret.name) -}}
{{- $errors = append $errors (printf "externalKafka.sasl.mechanism, .username and .passwordSecret.name are required with securityProtocol %s" $ks.securityProtocol) -}}
{{- end -}}
{{- else if $ks.sasl.mechanism -}}
{{- $errors = append $errors "externalKafka.sasl.mechanism needs securityProtocol SASL_PLAINTEXT or SASL_SSL" -}}
{{- end -}}
{{- range $key := list "user" "room" "reservation" -}}
{{- $svc := include "mr.service" (dict "ctx" $ "key" $key) | fromYaml -}}
{{- if gt (int $svc.terminationDrainSeconds) 600 -}}
{{- $errors = append $errors (printf "services.%s: terminationDrainSeconds (%d) must be at most 600 (the service's DRAIN_DELAY_MS is at most 600000)" $key (int $svc.terminationDrainSeconds)) -}}
{{- else if and (ge (int $svc.terminationDrainSeconds) 1) (le (int $svc.terminationDrainSeconds) 4) -}}
{{- $errors = append $errors (printf "services.%s: terminationDrainSeconds (%d) must be 0 (no drain) or at least 5: it must exceed the gateway's upstream keepalive_timeout (4 s, files/gateway.conf), so that the gateway holds no idle connection to the pod when it stops" $key (int $svc.terminationDrainSeconds)) -}}
{{- end -}}
{{- if lt (int $svc.dbPoolSize) 1 -}}
{{- $errors = append $errors (printf "services.%s: dbPoolSize must be at least 1" $key) -}}
{{- end -}}
{{- if $svc.podDisruptionBudget.enabled -}}
{{- $b := splitList " " (include "mr.pdbBudget" $svc) -}}
{{- $kind := index $b 0 -}}
{{- $count := index $b 1 | int -}}
{{- $n := include "mr.minReplicas" $svc | int -}}
{{- $v := index $svc.podDisruptionBudget $kind -}}
{{- if lt $count 0 -}}
{{- $errors = append $errors (printf "services.%s: podDisruptionBudget needs maxUnavailable or minAvailable (or enabled: false)" $key) -}}
{{- else if and (ge $n 1) (or (and (eq $kind "minAvailable") (ge $count $n)) (and (eq $kind "maxUnavailable") (lt $count 1))) -}}
{{- $errors = append $errors (printf "services.%s: podDisruptionBudget %s %v would block every eviction with %d replica(s) (autoscaling.minReplicas, else replicaCount), so no node could be drained; use maxUnavailable: 1" $key $kind $v $n) -}}
{{- else if and (ge $n 2) (or (and (eq $kind "minAvailable") (lt $count 1)) (and (eq $kind "maxUnavailable") (ge $count $n))) -}}
{{- $errors = append $errors (printf "services.%s: podDisruptionBudget %s %v lets all %d replicas be evicted at once, leaving no outbox publisher candidate; use maxUnavailable: 1 or minAvailable: 1" $key $kind $v $n) -}}
{{- end -}}
{{- end -}}
{{- $budget := add (mul 2 (int $svc.terminationDrainSeconds)) 10 -}}
{{- if le (int $svc.terminationGracePeriodSeconds) $budget -}}
{{- $errors = append $errors (printf "services.%s: terminationGracePeriodSeconds (%d) must exceed 2 x terminationDrainSeconds + 10 = %d (the preStop sleep, the service's own drain, 10 s for requests in flight)" $key (int $svc.terminationGracePeriodSeconds) $budget) -}}
{{- end -}}
{{- end -}}
{{- /* Client addresses: a trusted proxy's X-Forwarded-For names the client, so only the proxy
     may reach the gateway (otherwise any pod that can reach it chooses its /auth/* bucket), and
     user-service's X-Real-IP rule needs the policies that keep everyone but the gateway off it. */ -}}
{{- if .Values.gateway.trustedProxies -}}
{{- if not .Values.networkPolicy.enabled -}}
{{- $errors = append $errors "gateway.trustedProxies needs networkPolicy.enabled=true and networkPolicy.gatewayFrom naming the proxies' pods (e.g. the Ingress controller's namespace): otherwise any client that reaches the gateway can choose its address, and its /auth/* rate-limit bucket, by sending X-Forwarded-For; or set gateway.trustedProxies to []" -}}
{{- else if not .Values.networkPolicy.gatewayFrom -}}
{{- $errors = append $errors "gateway.trustedProxies needs networkPolicy.gatewayFrom naming the proxies' pods (e.g. the Ingress controller's namespace): with [] any source may connect to the gateway and choose its address, and its /auth/* rate-limit bucket, by sending X-Forwarded-For; or set gateway.trustedProxies to []" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.config.TRUSTED_GATEWAYS (not .Values.networkPolicy.enabled) -}}
{{- $errors = append $errors "config.TRUSTED_GATEWAYS needs networkPolicy.enabled=true (only the gateway may then connect to user-service): otherwise any pod can choose its rate-limit bucket by sending X-Real-IP; or set config.TRUSTED_GATEWAYS to \"\"" -}}
{{- end -}}
{{- if has (lower (toString (default "" .Values.config.TRUST_FORWARDED_FOR))) (list "1" "true" "yes" "on") -}}
{{- $errors = append $errors "config.TRUST_FORWARDED_FOR is no longer supported (user-service refuses to start with it): set TRUSTED_GATEWAYS to the gateway's addresses instead, and remove TRUST_FORWARDED_FOR" -}}
{{- end -}}
{{- /* Idle upstream connections: every gateway pod keeps its own to each service (2 upstream
     groups per worker), each holding one of a service pod's worker threads until nginx drops it
     after 4 s, and the Service places each on a pod at random.  At the gateway's most pods they
     may take at most half the threads of the service's fewest pods. */ -}}
{{- $threads := int (default "300" (toString (default "" .Values.config.NUM_THREADS))) -}}
{{- $gw := .Values.gateway -}}
{{- $gwMax := int $gw.replicaCount -}}
{{- if dig "autoscaling" "enabled" false $gw -}}
{{- $gwMax = int $gw.autoscaling.maxReplicas -}}
{{- end -}}
{{- $idle := mul $gwMax (int $gw.workerProcesses) 2 (int $gw.upstreamKeepalive) -}}
{{- range $key := list "user" "room" "reservation" -}}
{{- $svc := include "mr.service" (dict "ctx" $ "key" $key) | fromYaml -}}
{{- $fewest := include "mr.minReplicas" $svc | int -}}
{{- if gt (mul $idle 2) (mul $fewest $threads) -}}
{{- $errors = append $errors (printf "services.%s: %d gateway replicas (gateway.autoscaling.maxReplicas when enabled, else gateway.replicaCount) x gateway.workerProcesses (%d) x 2 upstream groups x gateway.upstreamKeepalive (%d) = %d idle upstream connections must stay at most half of the service's fewest replicas (%d) x config.NUM_THREADS (%d) = %d threads: each idle connection holds a worker thread; lower gateway.upstreamKeepalive" $key $gwMax (int $gw.workerProcesses) (int $gw.upstreamKeepalive) $idle $fewest $threads (mul $fewest $threads)) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.postgresql.enabled .Values.postgresql.maxConnections -}}
{{- $need := add (include "mr.db.serviceConnections" . | int) (int .Values.postgresql.connectionHeadroom) 3 -}}
{{- if lt (int .Values.postgresql.maxConnections) $need -}}
{{- $errors = append $errors (printf "postgresql.maxConnections (%d) is below what the services can open (%d: per service (replicas + 1) x (dbPoolSize + dbSessionsOutsidePool + webhookSenders + mailSenders with SMTP_URL)) + postgresql.connectionHeadroom (%d) + 3 reserved for superusers = %d; raise it, or leave it empty to have it computed" (int .Values.postgresql.maxConnections) (include "mr.db.serviceConnections" . | int) (int .Values.postgresql.connectionHeadroom) $need) -}}
{{- end -}}
{{- end -}}
{{- if le (int .Values.gateway.terminationGracePeriodSeconds) (int .Values.gateway.terminationDrainSeconds) -}}
{{- $errors = append $errors "gateway.terminationGracePeriodSeconds must exceed gateway.terminationDrainSeconds (the preStop sleep)" -}}
{{- end -}}
{{- $log := .Values.logging -}}
{{- if and $log.promtail.enabled (not $log.loki.enabled) (not $log.loki.url) -}}
{{- $errors = append $errors "logging.promtail.enabled needs a Loki: logging.loki.enabled=true or logging.loki.url" -}}
{{- end -}}
{{- if and $log.loki.url (not (regexMatch "^https?://[^/\\s]+(/.*)?$" $log.loki.url)) -}}
{{- $errors = append $errors "logging.loki.url must be an http:// or https:// URL" -}}
{{- end -}}
{{- if and $log.grafana.datasource (not $log.loki.enabled) (not $log.loki.url) -}}
{{- $errors = append $errors "logging.grafana.datasource needs a Loki: logging.loki.enabled=true or logging.loki.url" -}}
{{- end -}}
{{- if $log.cloudwatch.enabled -}}
{{- if not $log.cloudwatch.region -}}
{{- $errors = append $errors "logging.cloudwatch.region is required when logging.cloudwatch.enabled=true" -}}
{{- end -}}
{{- if not $log.cloudwatch.logGroup -}}
{{- $errors = append $errors "logging.cloudwatch.logGroup is required when logging.cloudwatch.enabled=true" -}}
{{- end -}}
{{- if not (or $log.cloudwatch.credentialsSecret $log.cloudwatch.roleArn) -}}
{{- $errors = append $errors "logging.cloudwatch needs credentials: credentialsSecret (a Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) or roleArn (IRSA)" -}}
{{- end -}}
{{- end -}}
{{- $am := .Values.alerting.alertmanagerConfig -}}
{{- if $am.enabled -}}
{{- if not .Values.alerting.adminEmails -}}
{{- $errors = append $errors "alerting.adminEmails must name at least one address when alerting.alertmanagerConfig.enabled=true" -}}
{{- end -}}
{{- if not $am.smarthost -}}
{{- $errors = append $errors "alerting.alertmanagerConfig.smarthost (host:port of the SMTP relay) is required when alerting.alertmanagerConfig.enabled=true" -}}
{{- end -}}
{{- if not $am.from -}}
{{- $errors = append $errors "alerting.alertmanagerConfig.from is required when alerting.alertmanagerConfig.enabled=true" -}}
{{- end -}}
{{- if and $am.authUsername (not $am.authPasswordSecret.name) -}}
{{- $errors = append $errors "alerting.alertmanagerConfig.authPasswordSecret.name is required with authUsername (the SMTP password comes from a Secret)" -}}
{{- end -}}
{{- end -}}
{{- $bk := .Values.backup -}}
{{- if $bk.enabled -}}
{{- if not $bk.s3.bucket -}}
{{- $errors = append $errors "backup.s3.bucket is required when backup.enabled=true" -}}
{{- end -}}
{{- if not $bk.s3.credentialsSecret.name -}}
{{- $errors = append $errors "backup.s3.credentialsSecret.name is required when backup.enabled=true (a Secret holding the access key id and secret access key; never values)" -}}
{{- end -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n\nmeeting-rooms: missing or invalid values:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}

{{/* Logging: Loki's Service name, and the push URL Promtail uses (the bundled Loki or
     logging.loki.url). */}}
{{- define "mr.loki.fullname" -}}
{{- printf "%s-loki" (include "mr.prefix" .) -}}
{{- end -}}

{{- define "mr.loki.url" -}}
{{- if .Values.logging.loki.enabled -}}
{{- printf "http://%s.%s.svc.%s:3100" (include "mr.loki.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- else -}}
{{- trimSuffix "/" .Values.logging.loki.url -}}
{{- end -}}
{{- end -}}

{{/* The port of a URL (its scheme's default when it names none); call with the URL. */}}
{{- define "mr.urlPort" -}}
{{- $u := urlParse . -}}
{{- $port := regexFind ":[0-9]+$" $u.host | trimPrefix ":" -}}
{{- default (ternary "443" "80" (eq $u.scheme "https")) $port -}}
{{- end -}}

{{/* Security context of a log shipper reading /var/log/pods (Promtail, Fluent Bit): uid 0 by
     default, because the runtime writes the files root-owned 0640, but with every capability
     dropped, no privilege escalation and a read-only root filesystem. */}}
{{- define "mr.logReaderSecurityContext" -}}
runAsNonRoot: {{ ne (int .runAsUser) 0 }}
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Backups: the CronJob's name, and the S3 endpoint's port for its NetworkPolicy (443 for AWS
     S3, whose endpoint is left empty). */}}
{{- define "mr.backup.fullname" -}}
{{- printf "%s-backup" (include "mr.prefix" .) -}}
{{- end -}}

{{- define "mr.backup.s3Port" -}}
{{- with .Values.backup.s3.endpoint -}}
{{- include "mr.urlPort" . -}}
{{- else -}}
443
{{- end -}}
{{- end -}}

{{/* The web app: files/web is a link to web/ at the repository's top (Helm follows it, also in
     `helm package`).  mr.webVersion: the first 12 hex digits of a sha256 over every file, each
     as its path (relative to web/), a newline and its content, in the byte order of the paths -
     the same as scripts/nginx.sh computes for `make run`.  Its assets are served under
     /assets/<version>/, so a new version is a new path.  mr.webKey: a file's key in the
     ConfigMap, whose keys cannot hold "/". */}}
{{- define "mr.webVersion" -}}
{{- $all := "" -}}
{{- range $path, $_ := .Files.Glob "files/web/**" -}}
{{- $all = printf "%s%s\n%s" $all (trimPrefix "files/web/" $path) ($.Files.Get $path) -}}
{{- end -}}
{{- $all | sha256sum | trunc 12 -}}
{{- end -}}

{{- /* The web app's ConfigMap: one per version (templates/gateway/web-configmap.yaml). */}}
{{- define "mr.webConfigMap" -}}
{{- printf "%s-gateway-web-%s" (include "mr.prefix" .) (include "mr.webVersion" .) -}}
{{- end -}}

{{- /* The most base64 the web app's ConfigMap may hold: 900 KiB, below the API server's 1 MiB
     limit of an object, leaving room for the keys and metadata (tests/offline/test_helm_web.py
     checks web/ against it). */}}
{{- define "mr.webMaxBytes" -}}921600{{- end -}}

{{- define "mr.webKey" -}}
{{- regexReplaceAll "[^-._a-zA-Z0-9]" . "_" -}}
{{- end -}}
