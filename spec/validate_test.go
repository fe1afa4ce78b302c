package spec

import (
	"slices"
	"strings"
	"testing"
)

// withContainer, withPodSpec and withSpec add lines (from line 17) to
// minimalDeployment at the level of its container, pod spec and Deployment spec.
func withContainer(lines ...string) string { return minimalDeployment + indent(8, lines) }
func withPodSpec(lines ...string) string   { return minimalDeployment + indent(6, lines) }
func withSpec(lines ...string) string      { return minimalDeployment + indent(2, lines) }

func indent(n int, lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.Repeat(" ", n) + l + "\n")
	}
	return b.String()
}

const (
	container = "spec.template.spec.containers[0]"
	podSpec   = "spec.template.spec"
)

func TestValidateDeployment(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"invalid quantity", withContainer("resources:", "  limits:", "    memory: 12Xi"), []string{
			`t.yaml:19: ` + container + `.resources.limits.memory: invalid quantity "12Xi"`}},
		{"requests above limits", withContainer("resources:", "  requests:", `    cpu: "2"`, "  limits:", `    cpu: "1"`), []string{
			`t.yaml:19: ` + container + `.resources.requests.cpu: must be less than or equal to the cpu limit of 1, got 2`}},
		{"resources other than cpu and memory", withContainer("resources:", "  limits:", "    nvidia.com/gpu: 1"), []string{
			`t.yaml:19: ` + container + `.resources.limits[nvidia.com/gpu]: warning: resource "nvidia.com/gpu" is not honoured by Shoal: only cpu and memory are`}},
		{"negative replicas", withSpec("replicas: -1"), []string{
			`t.yaml:17: spec.replicas: must be greater than or equal to 0, got -1`}},
		{"missing selector", strings.Replace(minimalDeployment, "  selector:\n    matchLabels:\n      app: web\n", "", 1), []string{
			`t.yaml:5: spec.selector: required: an apps/v1 Deployment must state its selector`}},
		{"empty selector", strings.Replace(minimalDeployment, "    matchLabels:\n      app: web\n", "    matchLabels: {}\n", 1), []string{
			`t.yaml:6: spec.selector: must not be empty: it would select every instance`}},
		{"selector not matching the template", strings.Replace(minimalDeployment, "      app: web\n", "      app: api\n", 1), []string{
			`t.yaml:11: spec.template.metadata.labels: selector does not match template labels`}},
		{"selector expression not matching", strings.Replace(minimalDeployment, "      app: web\n", "      app: web\n    matchExpressions:\n    - {key: tier, operator: Exists}\n", 1), []string{
			`t.yaml:13: spec.template.metadata.labels: selector does not match template labels`}},
		{"invalid label key and value", strings.Replace(minimalDeployment, "  name: web\n", "  name: web\n  labels:\n    -bad: x\n    good: \"no spaces\"\n", 1), []string{
			`t.yaml:6: metadata.labels.-bad: invalid label key "-bad": must be a qualified name: an optional DNS subdomain prefix and '/', then at most 63 characters of A-Z, a-z, 0-9, '-', '_' and '.', starting and ending with a letter or digit`,
			`t.yaml:7: metadata.labels.good: invalid label value "no spaces": must be empty or at most 63 characters of A-Z, a-z, 0-9, '-', '_' and '.', starting and ending with a letter or digit`}},
		{"invalid Deployment name", strings.Replace(minimalDeployment, "  name: web\n", "  name: Web\n", 1), []string{
			`t.yaml:4: metadata.name: invalid value "Web": must be a lowercase RFC 1123 subdomain: at most 253 characters of a-z, 0-9, '-' and '.', each dot-separated part starting and ending with a letter or digit`}},
		{"missing name", strings.Replace(minimalDeployment, "  name: web\n", "  labels: {}\n", 1), []string{
			`t.yaml:3: metadata.name: required`}},
		{"invalid container name", strings.Replace(minimalDeployment, "- name: web", "- name: web_1", 1), []string{
			`t.yaml:15: ` + container + `.name: invalid value "web_1": must be a lowercase RFC 1123 label: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit`}},
		{"missing image", strings.Replace(minimalDeployment, "        image: nginx:1.25\n", "        args: [x]\n", 1), []string{
			`t.yaml:15: ` + container + `.image: required`}},
		{"no containers", strings.Replace(minimalDeployment, "      containers:\n      - name: web\n        image: nginx:1.25\n", "      containers: []\n", 1), []string{
			`t.yaml:14: ` + podSpec + `.containers: required: at least one container`}},
		{"duplicate container names", minimalDeployment + "      - name: web\n        image: busybox:1.36\n", []string{
			`t.yaml:17: ` + podSpec + `.containers[1].name: duplicate container name "web"`}},
		{"port out of range", withContainer("ports:", "- containerPort: 70000"), []string{
			`t.yaml:18: ` + container + `.ports[0].containerPort: must be between 1 and 65535, inclusive, got 70000`}},
		{"unsupported protocol", withContainer("ports:", "- containerPort: 80", "  protocol: ICMP"), []string{
			`t.yaml:19: ` + container + `.ports[0].protocol: unsupported value "ICMP": supported values are TCP, UDP, SCTP`}},
		{"SCTP container port", withContainer("ports:", "- containerPort: 80", "  protocol: SCTP"), nil},
		{"duplicate ports and port names", withContainer("ports:", "- {name: http, containerPort: 80}", "- {name: http, containerPort: 80}", "- {containerPort: 80, protocol: UDP}"), []string{
			`t.yaml:19: ` + container + `.ports[1].containerPort: duplicate port 80/TCP in the instance`,
			`t.yaml:19: ` + container + `.ports[1].name: duplicate port name "http" in the instance`}},
		{"invalid port name", withContainer("ports:", "- {name: http_alt, containerPort: 80}"), []string{
			`t.yaml:18: ` + container + `.ports[0].name: invalid value "http_alt": must be an IANA service name: at most 15 characters of a-z, 0-9 and '-', with at least one letter, no leading, trailing or double '-'`}},
		{"probe with two handlers", withContainer("livenessProbe:", "  httpGet: {port: 80}", "  tcpSocket: {port: 80}"), []string{
			`t.yaml:17: ` + container + `.livenessProbe: must have exactly one handler of httpGet, tcpSocket, exec and grpc, has 2`}},
		{"probe without a handler", withContainer("readinessProbe:", "  periodSeconds: 5"), []string{
			`t.yaml:17: ` + container + `.readinessProbe: must have exactly one handler of httpGet, tcpSocket, exec and grpc, has 0`}},
		{"probe naming a missing port", withContainer("readinessProbe:", "  httpGet:", "    port: http"), []string{
			`t.yaml:19: ` + container + `.readinessProbe.httpGet.port: port name "http" is not one of the container's ports`}},
		{"probe port out of range", withContainer("startupProbe:", "  tcpSocket:", "    port: 0"), []string{
			`t.yaml:19: ` + container + `.startupProbe.tcpSocket.port: must be between 1 and 65535, inclusive, got 0`}},
		{"liveness successThreshold", withContainer("livenessProbe:", "  exec: {command: [/bin/true]}", "  successThreshold: 2"), []string{
			`t.yaml:19: ` + container + `.livenessProbe.successThreshold: must be 1 for liveness and startup probes, got 2`}},
		{"negative probe timings", withContainer("readinessProbe:", "  exec: {command: [/bin/true]}", "  initialDelaySeconds: -1", "  periodSeconds: -5"), []string{
			`t.yaml:19: ` + container + `.readinessProbe.initialDelaySeconds: must be greater than or equal to 0, got -1`,
			`t.yaml:20: ` + container + `.readinessProbe.periodSeconds: must be greater than or equal to 1, got -5`}},
		{"exec probe without command", withContainer("readinessProbe:", "  exec: {command: []}"), []string{
			`t.yaml:18: ` + container + `.readinessProbe.exec.command: required`}},
		{"grpc probe port out of range", withContainer("readinessProbe:", "  grpc: {port: 70000}"), []string{
			`t.yaml:18: ` + container + `.readinessProbe.grpc.port: must be between 1 and 65535, inclusive, got 70000`}},
		{"grpc probe with a second handler", withContainer("livenessProbe:", "  grpc: {port: 9000, service: cart}", "  tcpSocket: {port: 9000}"), []string{
			`t.yaml:17: ` + container + `.livenessProbe: must have exactly one handler of httpGet, tcpSocket, exec and grpc, has 2`}},
		{"grpc probe port given by name", withContainer("startupProbe:", "  grpc: {port: grpc}"), []string{
			`t.yaml:18: ` + container + `.startupProbe.grpc.port: expected an integer, got string "grpc"`}},
		{"hook with two handlers", withContainer("lifecycle:", "  preStop:", "    exec: {command: [/bin/true]}", "    sleep: {seconds: 1}"), []string{
			`t.yaml:18: ` + container + `.lifecycle.preStop: must have exactly one handler of exec, httpGet and sleep, has 2`}},
		{"hook without a handler", withContainer("lifecycle:", "  postStart: {}"), []string{
			`t.yaml:18: ` + container + `.lifecycle.postStart: must have exactly one handler of exec, httpGet and sleep, has 0`}},
		{"hook sleep longer than the grace period", withContainer("lifecycle:", "  preStop:", "    sleep: {seconds: 31}"), []string{
			`t.yaml:19: ` + container + `.lifecycle.preStop.sleep.seconds: must be between 0 and terminationGracePeriodSeconds (30), got 31`}},
		{"hook sleep within a short grace period", withContainer("lifecycle:", "  preStop:", "    sleep: {seconds: 6}") + indent(6, []string{"terminationGracePeriodSeconds: 5"}), []string{
			`t.yaml:19: ` + container + `.lifecycle.preStop.sleep.seconds: must be between 0 and terminationGracePeriodSeconds (5), got 6`}},
		{"hook httpGet naming a missing port and exec without command", withContainer("lifecycle:", "  postStart:", "    httpGet: {port: admin, path: /started}", "  preStop:", "    exec: {command: []}"), []string{
			`t.yaml:19: ` + container + `.lifecycle.postStart.httpGet.port: port name "admin" is not one of the container's ports`,
			`t.yaml:21: ` + container + `.lifecycle.preStop.exec.command: required`}},
		{"disk emptyDir sizeLimit is not enforced", withPodSpec("volumes:", "- name: scratch", "  emptyDir: {sizeLimit: 1Gi}"), []string{
			`t.yaml:19: ` + podSpec + `.volumes[0].emptyDir.sizeLimit: warning: not enforced by Shoal for a disk emptyDir (only medium Memory is limited)`}},
		{"mount of an undeclared volume", withContainer("volumeMounts:", "- name: data", "  mountPath: /data"), []string{
			`t.yaml:18: ` + container + `.volumeMounts[0].name: volume "data" is not declared in the instance's volumes`}},
		{"relative and duplicate mount paths", withContainer("volumeMounts:", "- {name: tmp, mountPath: data}", "- {name: tmp, mountPath: /tmp}", "- name: tmp", "  mountPath: /tmp/", "  subPath: ../x") + indent(6, []string{"volumes:", "- {name: tmp, emptyDir: {}}"}), []string{
			`t.yaml:18: ` + container + `.volumeMounts[0].mountPath: invalid value "data": must be an absolute path`,
			`t.yaml:21: ` + container + `.volumeMounts[2].mountPath: duplicate mountPath "/tmp/"`,
			`t.yaml:22: ` + container + `.volumeMounts[2].subPath: invalid value "../x": must be a relative path without '..'`}},
		{"volume with two sources", withPodSpec("volumes:", "- name: data", "  emptyDir: {}", "  configMap: {name: cfg}"), []string{
			`t.yaml:18: ` + podSpec + `.volumes[0]: must have exactly one source (Shoal supports configMap, secret, emptyDir, hostPath, downwardAPI and projected), has 2`}},
		{"volume with an unsupported source", withPodSpec("volumes:", "- name: data", "  nfs: {server: x, path: /srv}"), []string{
			`t.yaml:19: ` + podSpec + `.volumes[0].nfs: volume source nfs is not supported by Shoal: use one of configMap, secret, emptyDir, hostPath, downwardAPI and projected`}},
		{"volume with a persistentVolumeClaim", withPodSpec("volumes:", "- name: data", "  persistentVolumeClaim: {claimName: db}"), []string{
			`t.yaml:19: ` + podSpec + `.volumes[0].persistentVolumeClaim: volume source persistentVolumeClaim is not supported by Shoal: use one of configMap, secret, emptyDir, hostPath, downwardAPI and projected`}},
		{"volume with no source", withPodSpec("volumes:", "- name: data"), []string{
			`t.yaml:18: ` + podSpec + `.volumes[0]: must have exactly one source (Shoal supports configMap, secret, emptyDir, hostPath, downwardAPI and projected), has 0`}},
		{"downwardAPI volume", withContainer("volumeMounts:", "- {name: info, mountPath: /info}") + indent(6, []string{"volumes:", "- name: info", "  downwardAPI:", "    defaultMode: 0o440", "    items:",
			"    - {path: labels, fieldRef: {fieldPath: metadata.labels}}",
			"    - {path: app, fieldRef: {apiVersion: v1, fieldPath: \"metadata.labels['app']\"}}",
			"    - {path: uid, mode: 0o400, fieldRef: {fieldPath: metadata.uid}}",
			"    - {path: mem, resourceFieldRef: {containerName: web, resource: limits.memory, divisor: 1Mi}}"}), nil},
		{"downwardAPI volume errors", withPodSpec("volumes:", "- name: info", "  downwardAPI:", "    items:",
			"    - {path: ip, fieldRef: {fieldPath: status.podIP}}",
			"    - {path: ../x, fieldRef: {apiVersion: v2, fieldPath: \"spec.nodeName['a']\"}}",
			"    - {path: mem, resourceFieldRef: {resource: limits.memory}}",
			"    - {path: cpu, resourceFieldRef: {containerName: nope, resource: limits.cpu, divisor: 1Mi}}",
			"    - {path: both, fieldRef: {fieldPath: metadata.name}, resourceFieldRef: {containerName: web, resource: limits.gpu}}"), []string{
			`t.yaml:21: ` + podSpec + `.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: unsupported value "status.podIP" (status.podIP is for env only): supported values are metadata.name, metadata.namespace, metadata.uid, metadata.labels, metadata.annotations, metadata.labels['key'] and metadata.annotations['key']`,
			`t.yaml:22: ` + podSpec + `.volumes[0].downwardAPI.items[1].path: invalid value "../x": must be a relative path without '..'`,
			`t.yaml:22: ` + podSpec + `.volumes[0].downwardAPI.items[1].fieldRef.apiVersion: unsupported value "v2": supported values are v1`,
			`t.yaml:22: ` + podSpec + `.volumes[0].downwardAPI.items[1].fieldRef.fieldPath: unsupported value "spec.nodeName['a']": only metadata.labels and metadata.annotations take a ['key'] subscript`,
			`t.yaml:23: ` + podSpec + `.volumes[0].downwardAPI.items[2].resourceFieldRef.containerName: required in a volume: the container whose resources to report`,
			`t.yaml:24: ` + podSpec + `.volumes[0].downwardAPI.items[3].resourceFieldRef.containerName: container "nope" is not one of the instance's containers`,
			`t.yaml:24: ` + podSpec + `.volumes[0].downwardAPI.items[3].resourceFieldRef.divisor: unsupported value "1Mi" for limits.cpu: supported values are 1m, 1`,
			`t.yaml:25: ` + podSpec + `.volumes[0].downwardAPI.items[4]: must have exactly one of fieldRef and resourceFieldRef, has 2`,
			`t.yaml:25: ` + podSpec + `.volumes[0].downwardAPI.items[4].resourceFieldRef.resource: unsupported value "limits.gpu": supported values are limits.cpu, limits.memory, limits.ephemeral-storage, requests.cpu, requests.memory, requests.ephemeral-storage`}},
		{"projected volume", withPodSpec("volumes:", "- name: all", "  projected:", "    defaultMode: 0o1000", "    sources:",
			"    - configMap: {name: cfg, items: [{key: a, path: a}]}",
			"    - secret: {name: s, optional: true}",
			"    - downwardAPI: {items: [{path: ns, fieldRef: {fieldPath: metadata.namespace}}]}",
			"    - serviceAccountToken: {path: token, audience: vault}",
			"    - clusterTrustBundle: {path: ca.pem, signerName: example.com/ca}",
			"    - {}",
			"    - downwardAPI: {items: [{path: a, fieldRef: {fieldPath: metadata.name}}]}"), []string{
			`t.yaml:20: ` + podSpec + `.volumes[0].projected.defaultMode: must be a file mode between 0 and 0777 (octal), got 01000`,
			`t.yaml:25: ` + podSpec + `.volumes[0].projected.sources[3].serviceAccountToken: warning: not honoured: Shoal has no Kubernetes API to issue a service account token for; file "token" is not written`,
			`t.yaml:26: ` + podSpec + `.volumes[0].projected.sources[4].clusterTrustBundle: warning: not honoured: Shoal has no ClusterTrustBundle objects; file "ca.pem" is not written`,
			`t.yaml:27: ` + podSpec + `.volumes[0].projected.sources[5]: must have exactly one of configMap, secret, downwardAPI, serviceAccountToken and clusterTrustBundle, has 0`,
			`t.yaml:28: ` + podSpec + `.volumes[0].projected.sources[6].downwardAPI.items[0].path: duplicate path "a" in the volume`}},
		{"duplicate volume names and bad items", withPodSpec("volumes:", "- {name: data, emptyDir: {medium: HugePages}}", "- name: data", "  secret:", "    secretName: s", "    defaultMode: 0o1777", "    items: [{key: a/b, path: /abs}]"), []string{
			`t.yaml:18: ` + podSpec + `.volumes[0].emptyDir.medium: unsupported value "HugePages": supported values are "" (disk) and Memory`,
			`t.yaml:19: ` + podSpec + `.volumes[1].name: duplicate volume name "data"`,
			`t.yaml:22: ` + podSpec + `.volumes[1].secret.defaultMode: must be a file mode between 0 and 0777 (octal), got 01777`,
			`t.yaml:23: ` + podSpec + `.volumes[1].secret.items[0].key: invalid value "a/b": must be a key of at most 253 characters of A-Z, a-z, 0-9, '-', '_' and '.', and not '.', '..' or starting with '..'`,
			`t.yaml:23: ` + podSpec + `.volumes[1].secret.items[0].path: invalid value "/abs": must be a relative path without '..'`}},
		{"invalid env name", withContainer("env:", "- name: 1PORT", "  value: x"), []string{
			`t.yaml:18: ` + container + `.env[0].name: invalid value "1PORT": must be an environment variable name: A-Z, a-z, 0-9, '-', '_' and '.', not starting with a digit`}},
		{"env with value and valueFrom", withContainer("env:", "- name: A", "  value: x", "  valueFrom:", "    fieldRef: {fieldPath: metadata.name}"), []string{
			`t.yaml:20: ` + container + `.env[0].valueFrom: must not be set when value is set`}},
		{"env valueFrom with two sources", withContainer("env:", "- name: A", "  valueFrom:", "    configMapKeyRef: {name: cfg, key: a}", "    secretKeyRef: {name: s, key: a}"), []string{
			`t.yaml:19: ` + container + `.env[0].valueFrom: must have exactly one of configMapKeyRef, secretKeyRef, fieldRef and resourceFieldRef, has 2`}},
		{"env valueFrom with an unsupported fieldRef", withContainer("env:", "- name: A", "  valueFrom:", "    fieldRef: {fieldPath: metadata.labels}"), []string{
			`t.yaml:20: ` + container + `.env[0].valueFrom.fieldRef.fieldPath: unsupported value "metadata.labels" (metadata.labels is for downwardAPI volumes only; env takes one key: metadata.labels['key']): supported values are metadata.name, metadata.namespace, metadata.uid, spec.nodeName, spec.serviceAccountName, status.hostIP, status.hostIPs, status.podIP, status.podIPs, metadata.labels['key'] and metadata.annotations['key']`}},
		{"env Downward API", withContainer("env:",
			"- {name: A, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}",
			"- {name: B, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['app']\"}}}",
			"- {name: C, valueFrom: {fieldRef: {fieldPath: \"metadata.annotations['example.com/Team']\"}}}",
			"- {name: D, valueFrom: {fieldRef: {fieldPath: status.hostIPs}}}",
			"- {name: E, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}",
			"- {name: F, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}",
			"- {name: G, valueFrom: {resourceFieldRef: {containerName: web, resource: requests.cpu, divisor: 1m}}}",
			"- {name: H, valueFrom: {resourceFieldRef: {resource: limits.ephemeral-storage, divisor: 1Gi}}}",
			"- {name: I, valueFrom: {resourceFieldRef: {resource: requests.memory, divisor: 1024Ki}}}",
			"- {name: J, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: \"0.001\"}}}"), nil},
		{"env resourceFieldRef errors", withContainer("env:",
			"- {name: A, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 3Mi}}}",
			"- {name: B, valueFrom: {resourceFieldRef: {containerName: sidecar, resource: requests.cpu}}}",
			"- {name: C, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['bad key']\"}}}"), []string{
			`t.yaml:18: ` + container + `.env[0].valueFrom.resourceFieldRef.divisor: unsupported value "3Mi" for limits.memory: supported values are 1, 1k, 1M, 1G, 1T, 1P, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi`,
			`t.yaml:19: ` + container + `.env[1].valueFrom.resourceFieldRef.containerName: container "sidecar" is not one of the instance's containers`,
			`t.yaml:20: ` + container + `.env[2].valueFrom.fieldRef.fieldPath: invalid key "bad key" in metadata.labels['bad key']: must be a qualified name: an optional DNS subdomain prefix and '/', then at most 63 characters of A-Z, a-z, 0-9, '-', '_' and '.', starting and ending with a letter or digit`}},
		{"env key selector without key", withContainer("env:", "- name: A", "  valueFrom:", "    secretKeyRef: {name: s}"), []string{
			`t.yaml:20: ` + container + `.env[0].valueFrom.secretKeyRef.key: required`}},
		{"envFrom with no source and a bad prefix", withContainer("envFrom:", `- prefix: "9_"`), []string{
			`t.yaml:18: ` + container + `.envFrom[0]: must have exactly one of configMapRef and secretRef, has 0`,
			`t.yaml:18: ` + container + `.envFrom[0].prefix: invalid value "9_": must be an environment variable name: A-Z, a-z, 0-9, '-', '_' and '.', not starting with a digit`}},
		{"unsupported strategy", withSpec("strategy:", "  type: BlueGreen"), []string{
			`t.yaml:18: spec.strategy.type: unsupported value "BlueGreen": supported values are RollingUpdate, Recreate`}},
		{"rollingUpdate with Recreate", withSpec("strategy:", "  type: Recreate", "  rollingUpdate: {maxSurge: 1}"), []string{
			`t.yaml:19: spec.strategy.rollingUpdate: must not be set when type is Recreate`}},
		{"maxSurge and maxUnavailable both zero", withSpec("strategy:", "  rollingUpdate: {maxSurge: 0, maxUnavailable: 0%}"), []string{
			`t.yaml:18: spec.strategy.rollingUpdate.maxUnavailable: must not be 0 when maxSurge is 0: the rollout could never make progress`}},
		{"bad percentages", withSpec("strategy:", "  rollingUpdate:", `    maxSurge: "25"`, "    maxUnavailable: 150%"), []string{
			`t.yaml:19: spec.strategy.rollingUpdate.maxSurge: invalid value "25": must be a non-negative integer or a percentage such as 25%`,
			`t.yaml:20: spec.strategy.rollingUpdate.maxUnavailable: must not be greater than 100%, got 150%`}},
		{"progress deadline not above minReadySeconds", withSpec("minReadySeconds: 30", "progressDeadlineSeconds: 30"), []string{
			`t.yaml:18: spec.progressDeadlineSeconds: must be greater than minReadySeconds (30), got 30`}},
		{"node affinity operators", withPodSpec("affinity:", "  nodeAffinity:", "    requiredDuringSchedulingIgnoredDuringExecution:", "      nodeSelectorTerms:", "      - matchExpressions:",
			"        - {key: zone, operator: In}",
			"        - {key: ssd, operator: Exists, values: [\"yes\"]}",
			"        - {key: cores, operator: Gt, values: [many]}",
			"        - {key: cores, operator: Lt, values: [\"1\", \"2\"]}",
			"        - {key: cores, operator: Near}",
			"    preferredDuringSchedulingIgnoredDuringExecution:",
			"    - {weight: 0, preference: {matchExpressions: [{key: zone, operator: NotIn, values: [a]}]}}"), []string{
			`t.yaml:22: ` + podSpec + `.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values: required when operator is In`,
			`t.yaml:23: ` + podSpec + `.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values: must be empty when operator is Exists`,
			`t.yaml:24: ` + podSpec + `.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[2].values[0]: invalid value "many": must be an integer when operator is Gt`,
			`t.yaml:25: ` + podSpec + `.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[3].values: must hold exactly one integer when operator is Lt`,
			`t.yaml:26: ` + podSpec + `.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[4].operator: unsupported value "Near": supported values are In, NotIn, Exists, DoesNotExist, Gt, Lt`,
			`t.yaml:28: ` + podSpec + `.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: must be between 1 and 100, inclusive, got 0`}},
		{"pod anti-affinity terms", withPodSpec("affinity:", "  podAntiAffinity:", "    requiredDuringSchedulingIgnoredDuringExecution:",
			"    - labelSelector: {matchExpressions: [{key: app, operator: Gt, values: [\"1\"]}]}",
			"    preferredDuringSchedulingIgnoredDuringExecution:",
			"    - weight: 101",
			"      podAffinityTerm: {topologyKey: zone, namespaces: [Shop]}"), []string{
			`t.yaml:20: ` + podSpec + `.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: required`,
			`t.yaml:20: ` + podSpec + `.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].operator: unsupported value "Gt": Gt and Lt are only for node selectors`,
			`t.yaml:22: ` + podSpec + `.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: must be between 1 and 100, inclusive, got 101`,
			`t.yaml:23: ` + podSpec + `.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.namespaces[0]: invalid value "Shop": must be a lowercase RFC 1123 label: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit`}},
		{"topology spread constraints", withPodSpec("topologySpreadConstraints:",
			"- {maxSkew: 0, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}",
			"- {maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}",
			"- {maxSkew: 1, topologyKey: zone, whenUnsatisfiable: Sometimes}"), []string{
			`t.yaml:18: ` + podSpec + `.topologySpreadConstraints[0].maxSkew: must be greater than 0, got 0`,
			`t.yaml:19: ` + podSpec + `.topologySpreadConstraints[1]: duplicate constraint for topologyKey "zone" and whenUnsatisfiable "DoNotSchedule"`,
			`t.yaml:20: ` + podSpec + `.topologySpreadConstraints[2].whenUnsatisfiable: unsupported value "Sometimes": supported values are DoNotSchedule, ScheduleAnyway`}},
		{"negative grace period", withPodSpec("terminationGracePeriodSeconds: -1"), []string{
			`t.yaml:17: ` + podSpec + `.terminationGracePeriodSeconds: must be greater than or equal to 0, got -1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Decode("t.yaml", []byte(tt.yaml), LoadOptions{})
			if got := diagStrings(diags); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

// serviceHead is a Service up to its spec's selector (7 lines); cases add lines from line 8.
const serviceHead = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n"

func TestValidateOtherKinds(t *testing.T) {
	big := strings.Repeat("x", 1<<19)
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"valid Service", serviceHead + "  ports:\n  - port: 80\n", nil},
		{"Service without ports", serviceHead, []string{
			`t.yaml:5: spec.ports: required: at least one port (only a headless Service, clusterIP: None, may have none)`}},
		{"headless Service without ports", serviceHead + "  clusterIP: None\n", nil},
		{"Service ports", serviceHead + "  ports:\n  - port: 0\n  - {port: 80, protocol: UDP}\n  - {name: http, port: 80, protocol: UDP, targetPort: web_port}\n  - {name: http, port: 81}\n", []string{
			`t.yaml:9: spec.ports[0].name: required when the Service has more than one port`,
			`t.yaml:9: spec.ports[0].port: must be between 1 and 65535, inclusive, got 0`,
			`t.yaml:10: spec.ports[1].name: required when the Service has more than one port`,
			`t.yaml:11: spec.ports[2].port: duplicate port 80/UDP`,
			`t.yaml:11: spec.ports[2].targetPort: invalid value "web_port": must be an IANA service name: at most 15 characters of a-z, 0-9 and '-', with at least one letter, no leading, trailing or double '-'`,
			`t.yaml:12: spec.ports[3].name: duplicate port name "http"`}},
		{"Service clusterIP and NodePort honoured", serviceHead + "  clusterIP: 10.96.0.10\n  type: NodePort\n  ports: [{port: 53, protocol: UDP, nodePort: 30053}]\n", nil},
		{"Service clusterIP not an address", serviceHead + "  clusterIP: ten\n  ports: [{port: 53}]\n", []string{
			`t.yaml:8: spec.clusterIP: invalid value "ten": must be None or an IPv4 address in the cluster's service range`}},
		{"nodePort on a ClusterIP Service", serviceHead + "  ports: [{port: 53, nodePort: 30053}]\n", []string{
			`t.yaml:8: spec.ports[0].nodePort: set on a Service of type ClusterIP: only NodePort and LoadBalancer Services have node ports`}},
		{"nodePort out of range", serviceHead + "  type: LoadBalancer\n  ports: [{port: 53, nodePort: 70000}]\n", []string{
			`t.yaml:8: spec.type: warning: type LoadBalancer: Shoal has no load balancer to provision; served as NodePort on every node`,
			`t.yaml:9: spec.ports[0].nodePort: must be between 1 and 65535, inclusive, got 70000`}},
		{"hostPort and hostIP", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n      - name: c\n        image: i\n        ports: [{containerPort: 80, hostPort: 0, hostIP: 10.0.0.1}, {containerPort: 81, hostPort: 70000}, {containerPort: 82, hostPort: 8082, hostIP: nope}]\n", []string{
			`t.yaml:12: spec.template.spec.containers[0].ports[0].hostIP: set without hostPort`,
			`t.yaml:12: spec.template.spec.containers[0].ports[1].hostPort: must be between 1 and 65535, inclusive, got 70000`,
			`t.yaml:12: spec.template.spec.containers[0].ports[2].hostIP: invalid value "nope": must be an IPv4 address`}},
		{"ExternalName Service needs no ports", "apiVersion: v1\nkind: Service\nmetadata:\n  name: db\nspec:\n  type: ExternalName\n  externalName: db.example.com.\n", nil},
		{"ExternalName Service ignores its selector", serviceHead + "  type: ExternalName\n  externalName: db.example.com\n  ports: [{port: 5432, protocol: SCTP}]\n", []string{
			`t.yaml:6: spec.selector: warning: ignored: an ExternalName Service is a DNS alias to "db.example.com" and has no endpoints`}},
		{"ExternalName errors", "apiVersion: v1\nkind: Service\nmetadata:\n  name: db\nspec:\n  type: ExternalName\n  externalName: Db_.example.com\n  clusterIP: 10.96.0.5\n", []string{
			`t.yaml:7: spec.externalName: invalid value "Db_.example.com": must be a lowercase RFC 1123 subdomain: at most 253 characters of a-z, 0-9, '-' and '.', each dot-separated part starting and ending with a letter or digit`,
			`t.yaml:8: spec.clusterIP: must not be set when type is ExternalName (got "10.96.0.5")`}},
		{"ExternalName without a name", "apiVersion: v1\nkind: Service\nmetadata:\n  name: db\nspec:\n  type: ExternalName\n", []string{
			`t.yaml:5: spec.externalName: required`}},
		{"externalName on a ClusterIP Service", serviceHead + "  externalName: db.example.com\n  ports: [{port: 80}]\n", []string{
			`t.yaml:8: spec.externalName: must not be set unless type is ExternalName`}},
		{"SCTP Service port", serviceHead + "  ports: [{port: 9999, protocol: SCTP}]\n", []string{
			`t.yaml:8: spec.ports[0].protocol: warning: SCTP Service ports are not proxied by Shoal: the virtual IP and node ports carry TCP and UDP only (DNS still names the port)`}},
		{"unknown Service type", serviceHead + "  type: Mesh\n  ports: [{port: 80}]\n", []string{
			`t.yaml:8: spec.type: unsupported value "Mesh": supported values are ClusterIP, NodePort, LoadBalancer, ExternalName`}},
		{"Service name must start with a letter", strings.Replace(serviceHead, "name: web", "name: 7web", 1) + "  ports: [{port: 80}]\n", []string{
			`t.yaml:4: metadata.name: invalid value "7web": must be a lowercase RFC 1035 label: at most 63 characters of a-z, 0-9 and '-', starting with a letter and ending with a letter or digit`}},
		{"Service without selector", "apiVersion: v1\nkind: Service\nmetadata:\n  name: ext\nspec:\n  ports: [{port: 80}]\n", []string{
			`t.yaml:5: spec.selector: warning: not set: Shoal manages no endpoints for a Service without a selector`}},
		{"ConfigMap keys", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a/b: x\n  ok.yaml: \"y\"\nbinaryData:\n  ok.yaml: eQ==\n", []string{
			`t.yaml:6: data[a/b]: invalid value "a/b": must be a key of at most 253 characters of A-Z, a-z, 0-9, '-', '_' and '.', and not '.', '..' or starting with '..'`,
			`t.yaml:9: binaryData[ok.yaml]: key "ok.yaml" is also in data`}},
		{"ConfigMap too large", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: " + big + "\n  b: " + big + "\n  c: x\n", []string{
			`t.yaml:1: data totals 1048577 bytes, more than the limit of 1048576`}},
		{"Secret keys written in stringData", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  good: x\n  bad key: \"y\"\n", []string{
			`t.yaml:7: stringData[bad key]: invalid value "bad key": must be a key of at most 253 characters of A-Z, a-z, 0-9, '-', '_' and '.', and not '.', '..' or starting with '..'`}},
		{"Namespace name is a label", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop.example\n", []string{
			`t.yaml:4: metadata.name: invalid value "shop.example": must be a lowercase RFC 1123 label: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit`}},
		{"Namespace in a namespace", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  namespace: default\n", []string{
			`t.yaml:5: metadata.namespace: warning: ignored: a Namespace does not belong to a namespace`}},
		{"invalid namespace", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: Shop\n", []string{
			`t.yaml:5: metadata.namespace: invalid value "Shop": must be a lowercase RFC 1123 label: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit`}},
		{"annotation keys", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  annotations:\n    a b: x\n", []string{
			`t.yaml:6: metadata.annotations[a b]: invalid annotation key "a b": must be a qualified name: an optional DNS subdomain prefix and '/', then at most 63 characters of A-Z, a-z, 0-9, '-', '_' and '.', starting and ending with a letter or digit`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Decode("t.yaml", []byte(tt.yaml), LoadOptions{})
			if got := diagStrings(diags); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}
