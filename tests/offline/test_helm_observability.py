"""Offline checks of the chart's logs and alerts (issue 17): Loki, Promtail, Fluent Bit
(CloudWatch), the Grafana log dashboards, the PrometheusRule alerts run through
`promtool check rules` and `promtool test rules` (tests/offline/promtool/*.yaml, synthetic
series: each alert fires when it should and not otherwise), the Loki ruler's alerts and the
Alertmanager e-mail route.  Renders with the fixtures of test_helm.py; promtool is pinned and
installed by tools.sh like helm."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from test_helm import (  # noqa: F401 - fixtures below
    CHART,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    ROOT,
    SECRETS,
    env_file,
    external_values_file,
    helm,
    rendered,
    variants,
)
from test_helm_network import COMPONENT, OUTSIDERS, Literal, Pod, allowed

PROMTOOL_TESTS = Path(__file__).resolve().parent / "promtool"
ADMINS = ["ops@example.com", "on-call@rooms.example.org"]
LOGGING = {  # every part on, with the bundled Loki
    "logging.loki.enabled": "true",
    "logging.promtail.enabled": "true",
    "logging.cloudwatch.enabled": "true",
    "logging.cloudwatch.region": "eu-west-1",
    "logging.cloudwatch.logGroup": "/meeting-rooms/test",
    "logging.cloudwatch.roleArn": "arn:aws:iam::123456789012:role/mr-logs",
    "logging.grafana.dashboards": "true",
    "logging.grafana.datasource": "true",
    "monitoring.prometheusRule.enabled": "true",
    "alerting.adminEmails[0]": ADMINS[0],
    "alerting.adminEmails[1]": ADMINS[1],
    "alerting.alertmanagerConfig.enabled": "true",
    "alerting.alertmanagerConfig.smarthost": "smtp.example.com:587",
    "alerting.alertmanagerConfig.from": "alerts@example.com",
    "alerting.alertmanagerConfig.authUsername": "alerts",
    "alerting.alertmanagerConfig.authPasswordSecret.name": "rooms-smtp",
}
EXTERNAL_LOKI = {  # Promtail to an existing Loki; CloudWatch credentials from a Secret
    "logging.loki.url": "https://loki.example.internal:8443/",
    "logging.promtail.enabled": "true",
    "logging.cloudwatch.enabled": "true",
    "logging.cloudwatch.region": "us-east-1",
    "logging.cloudwatch.logGroup": "rooms",
    "logging.cloudwatch.credentialsSecret": "rooms-aws",
    "logging.grafana.datasource": "true",
}
LOG_COMPONENTS = {"loki", "promtail", "fluent-bit"}
# What Promtail makes of a line: stream labels, and structured metadata (not indexed).
PROMTAIL_LABELS = {"namespace", "component", "service", "level"}
PROMTAIL_METADATA = {"request_id", "method", "route", "status", "duration_ms", "pod"}
CRD_KINDS = {"PrometheusRule", "AlertmanagerConfig", "ServiceMonitor"}


def sets(d):
    return tuple(sorted(d.items()))


@pytest.fixture(scope="session")
def promtool_bin(offline_tools):
    path = ROOT / ".tools" / "bin" / "promtool"
    assert path.exists(), "tools.sh did not install promtool"
    return str(path)


@pytest.fixture(scope="session")
def logging_render(helm):
    r = helm.template(sets=sets(LOGGING))
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="session")
def external_loki_render(helm):
    r = helm.template(sets=sets(EXTERNAL_LOKI))
    assert r.returncode == 0, r.stderr
    return r


def containers(doc):
    spec = doc["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def component(doc):
    return doc["metadata"]["labels"]["app.kubernetes.io/component"]


def cm_data(r, name):
    return r.get("ConfigMap", name)["data"]


# --- off by default ------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["default", "development", "staging", "production",
                                     "monitoring", "external"])
def test_logging_and_alert_routing_are_off_by_default(variants, variant):
    r = rendered(variants, variant)
    assert not {component(d) for d in r.docs} & LOG_COMPONENTS
    assert not r.kind("DaemonSet") and not r.kind("Role") and not r.kind("AlertmanagerConfig")
    assert not [c for c in r.kind("ConfigMap")
                if {"grafana_datasource"} & set(c["metadata"]["labels"])]


# --- manifests: schemas, hardening, RBAC ---------------------------------------------------------

@pytest.mark.parametrize("env", ["development", "staging", "production"])
def test_every_environment_renders_and_lints_with_logging_and_alerts(helm, env):
    r = helm.template(files=(env_file(env),), sets=sets(LOGGING))
    assert r.returncode == 0, r.stderr
    assert {component(d) for d in r.docs} >= LOG_COMPONENTS
    assert r.kind("PrometheusRule") and r.kind("AlertmanagerConfig")
    args = ["lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, "-f", env_file(env)]
    for k, v in {**SECRETS, **LOGGING}.items():
        args += ["--set-string" if v not in ("true", "false") else "--set", f"{k}={v}"]
    proc = helm(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("which", ["bundled", "external"])
def test_logging_manifests_validate(logging_render, external_loki_render, which,
                                    kubernetes_validate_bin, tmp_path):
    r = logging_render if which == "bundled" else external_loki_render
    docs = [d for d in r.docs if d["kind"] not in CRD_KINDS]
    path = tmp_path / "logging.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    proc = subprocess.run([kubernetes_validate_bin, "--strict", "--quiet", "-k", KUBE_VERSION,
                           str(path)], capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "ERROR" not in out and "Couldn't find schema" not in out, out
    kinds = {(d["kind"], component(d)) for d in docs}
    expected = {("DaemonSet", "promtail"), ("DaemonSet", "fluent-bit"), ("Role", "promtail"),
                ("RoleBinding", "promtail")}
    if which == "bundled":
        expected |= {("StatefulSet", "loki"), ("Service", "loki")}
    assert expected <= kinds


@pytest.mark.parametrize("which", ["bundled", "external"])
def test_logging_workloads_are_hardened(logging_render, external_loki_render, which):
    r = logging_render if which == "bundled" else external_loki_render
    workloads = [d for d in r.docs if d["kind"] in ("DaemonSet", "StatefulSet")
                 and component(d) in LOG_COMPONENTS]
    assert {component(w) for w in workloads} == (
        LOG_COMPONENTS if which == "bundled" else {"promtail", "fluent-bit"})
    for w in workloads:
        name = w["metadata"]["name"]
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("hostNetwork", False) is False and pod.get("hostPID", False) is False
        host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
        for c in pod["containers"]:
            sc = c["securityContext"]
            where = f"{name}/{c['name']}"
            image, _, tag = c["image"].rpartition(":")
            assert image and re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{where}: unpinned {c['image']}"
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert {"requests", "limits"} <= set(c["resources"]), where
            assert c.get("readinessProbe") and c.get("livenessProbe"), where
            for m in c["volumeMounts"]:
                if m["name"] in host_paths:
                    assert m.get("readOnly") is True, f"{where}: hostPath {m['name']} writable"
        if component(w) == "loki":
            assert not host_paths
            (c,) = pod["containers"]
            assert c["securityContext"]["runAsNonRoot"] is True
            assert c["securityContext"]["runAsUser"] == 10001
            (claim,) = w["spec"]["volumeClaimTemplates"]
            assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
            assert {"name": "data", "mountPath": "/var/loki"} in c["volumeMounts"]
        else:
            # The documented exception: uid 0 (root-owned 0640 files), nothing else.
            assert host_paths == {"pods": "/var/log/pods"}, name
            (c,) = pod["containers"]
            assert c["securityContext"]["runAsUser"] == 0
            assert c["securityContext"]["runAsNonRoot"] is False


def test_log_readers_run_non_root_when_asked(helm):
    r = helm.template(sets=sets({**EXTERNAL_LOKI,
                                 "logging.promtail.securityContext.runAsUser": Literal("1000"),
                                 "logging.promtail.securityContext.runAsGroup": Literal("4")}))
    assert r.returncode == 0, r.stderr
    (c,) = r.get("DaemonSet", f"{RELEASE}-promtail")["spec"]["template"]["spec"]["containers"]
    assert c["securityContext"]["runAsNonRoot"] is True
    assert (c["securityContext"]["runAsUser"], c["securityContext"]["runAsGroup"]) == (1000, 4)


def test_only_promtail_reads_the_api_and_only_pods_in_its_namespace(logging_render):
    r = logging_render
    assert not r.kind("ClusterRole") and not r.kind("ClusterRoleBinding")
    (role,) = r.kind("Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                              "verbs": ["get", "list", "watch"]}]
    (binding,) = r.kind("RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{RELEASE}-promtail",
                                    "namespace": NAMESPACE}]
    for sa in r.kind("ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False, sa["metadata"]["name"]
    for w in r.docs:
        if w["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
            mounts = w["spec"]["template"]["spec"].get("automountServiceAccountToken")
            assert mounts is (component(w) == "promtail"), w["metadata"]["name"]
    sa = r.get("ServiceAccount", f"{RELEASE}-fluent-bit")
    assert sa["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/mr-logs"}


def test_logging_network_paths(logging_render, external_loki_render):
    def pods(r):
        out = {}
        for d in r.docs:
            if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                labels = d["spec"]["template"]["metadata"]["labels"]
                out[labels[COMPONENT]] = Pod(labels[COMPONENT], NAMESPACE, labels)
        return out

    grafana = Pod("grafana", "monitoring", {"app.kubernetes.io/name": "grafana"})
    alertmanager = Pod("alertmanager", "monitoring", {"app.kubernetes.io/name": "alertmanager"})
    internet = OUTSIDERS["internet"]
    r = logging_render
    policies, p = r.kind("NetworkPolicy"), pods(r)
    names = {x["metadata"]["name"] for x in policies}
    assert {f"{RELEASE}-{c}" for c in LOG_COMPONENTS} <= names
    assert allowed(policies, p["promtail"], p["loki"], 3100)
    assert allowed(policies, grafana, p["loki"], 3100)
    assert allowed(policies, p["loki"], alertmanager, 9093)
    assert allowed(policies, p["promtail"], internet, 443)  # the API server
    assert allowed(policies, p["fluent-bit"], internet, 443)  # CloudWatch Logs
    for src in ("gateway", "user-service", "fluent-bit", "kafka"):
        assert not allowed(policies, p[src], p["loki"], 3100), src
    assert not allowed(policies, OUTSIDERS["stranger"], p["loki"], 3100)
    assert not allowed(policies, p["loki"], internet, 443)
    for c in ("promtail", "fluent-bit"):
        assert not allowed(policies, OUTSIDERS["stranger"], p[c], 3101)
        assert not allowed(policies, p[c], p["postgresql"], 5432)
    ext = external_loki_render.kind("NetworkPolicy")
    ep = pods(external_loki_render)
    assert allowed(ext, ep["promtail"], internet, 8443)
    assert not allowed(ext, ep["promtail"], internet, 5432)


@pytest.mark.parametrize("sets_,message", [
    ({"logging.promtail.enabled": "true"}, "logging.promtail.enabled needs a Loki"),
    ({"logging.cloudwatch.enabled": "true"}, "logging.cloudwatch.region is required"),
    ({"logging.cloudwatch.enabled": "true"}, "logging.cloudwatch.logGroup is required"),
    ({"logging.cloudwatch.enabled": "true"}, "logging.cloudwatch needs credentials"),
    ({"logging.grafana.datasource": "true"}, "logging.grafana.datasource needs a Loki"),
    ({"alerting.alertmanagerConfig.enabled": "true"}, "alerting.adminEmails must name"),
    ({"alerting.alertmanagerConfig.enabled": "true"}, "smarthost"),
    ({"alerting.adminEmails[0]": "not-an-address"}, "adminEmails"),
    ({"alerting.adminEmails[0]": "a@b@example.com"}, "adminEmails"),
    ({"logging.loki.url": "loki:3100"}, "logging.loki.url"),
    ({"logging.loki.image.tag": "latest"}, "logging.loki.image.tag"),
    ({"logging.cloudwatch.roleArn": "my-role"}, "roleArn"),
])
def test_bad_logging_and_alerting_values_are_refused(helm, sets_, message):
    r = helm.template(sets=sets(sets_))
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


# --- Promtail ------------------------------------------------------------------------------------

def promtail_config(r):
    return yaml.safe_load(cm_data(r, f"{RELEASE}-promtail")["promtail.yaml"])


def stages(pipeline):
    """Every stage, those inside match blocks included, as (kind, body)."""
    for s in pipeline:
        ((kind, body),) = s.items()
        yield kind, body
        if kind == "match":
            yield from stages(body["stages"])


def test_promtail_parses_the_services_json_into_few_labels(logging_render, external_loki_render):
    cfg = promtail_config(logging_render)
    assert cfg["clients"] == [{"url": f"http://{RELEASE}-loki.{NAMESPACE}.svc.cluster.local:3100"
                                      "/loki/api/v1/push"}]
    ext = promtail_config(external_loki_render)
    assert ext["clients"] == [{"url": "https://loki.example.internal:8443/loki/api/v1/push"}]
    (job,) = cfg["scrape_configs"]
    (sd,) = job["kubernetes_sd_configs"]
    assert sd["namespaces"] == {"names": [NAMESPACE]}
    keep = job["relabel_configs"][0]
    assert keep["action"] == "keep" and keep["regex"] == f"meeting-rooms;{RELEASE}"
    targets = {x["target_label"] for x in job["relabel_configs"] if "target_label" in x}
    assert targets == {"namespace", "component", "service", "pod", "__path__"}
    all_stages = list(stages(job["pipeline_stages"]))
    kinds = [k for k, _ in all_stages]
    assert kinds[0] == "cri"
    (labels,) = [b for k, b in all_stages if k == "labels"]
    assert set(labels) == {"level", "service"}
    (meta,) = [b for k, b in all_stages if k == "structured_metadata"]
    assert set(meta) == PROMTAIL_METADATA
    (drop,) = [b for k, b in all_stages if k == "labeldrop"]
    assert set(drop) == {"filename", "pod"}
    # The stream labels that remain: the relabelled ones minus dropped, plus the labels stage.
    assert (targets - {"__path__"} - set(drop)) | set(labels) == PROMTAIL_LABELS
    # The JSON fields are the ones the services write (common/src/log.c, http_dispatch.c).
    (js,) = [b for k, b in all_stages if k == "json"]
    source = (ROOT / "common/src/log.c").read_text() + (
        ROOT / "common/src/http_dispatch.c").read_text()
    for field in js["expressions"].values():
        assert f'"{field}"' in source, field
    assert set(js["expressions"]) >= {"level", "service", "request_id", "status", "duration_ms"}


def test_promtail_gateway_regex_reads_the_access_line(logging_render):
    """The gateway stage's regex against a line in files/gateway.conf's log_format."""
    cfg = promtail_config(logging_render)
    regexes = [b["expression"] for k, b in stages(cfg["scrape_configs"][0]["pipeline_stages"])
               if k == "regex"]
    conf = (CHART / "files" / "gateway.conf").read_text()
    assert "'$remote_addr [$time_iso8601] \"$request_method $uri $server_protocol\" $status " \
           "$body_bytes_sent '" in conf and "'rid=$req_id " in conf
    line = ('10.1.2.3 [2026-11-30T10:00:00+00:00] "GET /rooms/17 HTTP/1.1" 503 61 '
            'rid=0f6c1c1e-1111-4a4a-9b9b-000000000001 upstream=10.1.0.9:5001 rt=0.004 urt=0.004')
    m = re.search(regexes[0], line)
    assert m and m.group("status") == "503" and m.group("path") == "/rooms/17"
    assert m.group("request_id") == "0f6c1c1e-1111-4a4a-9b9b-000000000001"
    m = re.search(regexes[1], "2026/11/30 10:00:00 [error] 22#22: *1 connect() failed")
    assert m and m.group("nginx_level") == "error"
    (replace,) = [b for k, b in stages(cfg["scrape_configs"][0]["pipeline_stages"])
                  if k == "replace"]
    route = re.sub(replace["expression"], lambda mm: mm.group(0).replace(mm.group(1),
                                                                         replace["replace"]),
                   "/reservations/42")
    assert route == "/reservations/{id}"


# --- Loki ----------------------------------------------------------------------------------------

def test_loki_config_and_ruler(logging_render):
    cfg = yaml.safe_load(cm_data(logging_render, f"{RELEASE}-loki")["loki.yaml"])
    assert cfg["auth_enabled"] is False
    assert cfg["limits_config"]["retention_period"] == "168h"
    assert cfg["limits_config"]["allow_structured_metadata"] is True
    assert cfg["compactor"]["retention_enabled"] is True
    assert cfg["schema_config"]["configs"][0]["store"] == "tsdb"
    assert cfg["ruler"]["alertmanager_url"] == "http://alertmanager-operated.monitoring.svc:9093"
    sts = logging_render.get("StatefulSet", f"{RELEASE}-loki")
    (c,) = sts["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["rules"]["mountPath"] == "/etc/loki/rules/fake"  # the tenant without auth
    assert cfg["ruler"]["storage"]["local"]["directory"] == "/etc/loki/rules"


def loki_rules(r):
    (text,) = cm_data(r, f"{RELEASE}-loki-rules").values()
    return [x for g in yaml.safe_load(text)["groups"] for x in g["rules"]]


def logql_labels(expr):
    """Stream-selector labels, label-filter names and by/without labels of a LogQL expression."""
    selectors = re.findall(r"\{([^{}]*)\}", expr)
    stream = {m for s in selectors for m in re.findall(r'([a-z_]+)\s*(?:=~|!~|!=|=)\s*"', s)}
    no_strings = re.sub(r'"[^"]*"', '""', re.sub(r"\{[^{}]*\}", "{}", expr))
    filters = set(re.findall(r"(?:\||\bor|\band)\s*([a-z_]+)\s*(?:=~|!~|!=|=|>=|<=|>|<)",
                             no_strings))
    grouped = {x.strip() for g in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
               for x in g.split(",") if x.strip()}
    return stream, filters, grouped


def test_loki_rules_use_only_promtail_labels(logging_render):
    rules = loki_rules(logging_render)
    assert {x["alert"] for x in rules} == {"MeetingRoomsErrorLogLines",
                                           "MeetingRoomsCommitOutcomeUnknown"}
    for x in rules:
        stream, filters, grouped = logql_labels(x["expr"])
        assert stream and stream <= PROMTAIL_LABELS, (x["alert"], stream)
        assert filters <= PROMTAIL_LABELS | PROMTAIL_METADATA, (x["alert"], filters)
        assert grouped <= PROMTAIL_LABELS | PROMTAIL_METADATA, (x["alert"], grouped)
        assert f'namespace="{NAMESPACE}"' in x["expr"] and 'level="error"' in x["expr"]
        assert x["labels"]["severity"] in ("warning", "critical")
        assert "{{ $labels.service }}" in x["annotations"]["summary"]
    # The phrase the service logs when a COMMIT's outcome cannot be learnt.
    assert ": outcome unknown, answering unavailable" in (ROOT / "common/src/db.c").read_text()


# --- Grafana dashboards and data source ----------------------------------------------------------

def dashboards(r):
    out = {}
    for cm in r.kind("ConfigMap"):
        if cm["metadata"]["labels"].get("grafana_dashboard") == "1" and \
                cm["metadata"]["name"].startswith(f"{RELEASE}-dashboard-"):
            ((key, text),) = cm["data"].items()
            out[key] = json.loads(text)
    return out


def test_log_dashboards(logging_render):
    dash = dashboards(logging_render)
    assert set(dash) == {"meeting-rooms-service-logs.json", "meeting-rooms-error-tracking.json"}
    for name, d in dash.items():
        assert d["uid"] and d["title"], name
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert variables["datasource"]["query"] == "loki"
        assert variables["namespace"]["query"] == NAMESPACE
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), name
        for p in d["panels"]:
            where = f"{name}: {p['title']}"
            assert p["datasource"] == {"type": "loki", "uid": "${datasource}"}, where
            assert p["targets"], where
            for t in p["targets"]:
                assert t["datasource"]["uid"] == "${datasource}", where
                expr = t["expr"]
                assert expr.strip(), where
                assert expr.count("(") == expr.count(")"), where
                stream, filters, grouped = logql_labels(expr)
                assert stream and stream <= PROMTAIL_LABELS, (where, stream)
                assert 'namespace="$namespace"' in expr, where
                assert filters <= PROMTAIL_LABELS | PROMTAIL_METADATA, (where, filters)
                assert grouped <= PROMTAIL_LABELS | PROMTAIL_METADATA, (where, grouped)
                for var in re.findall(r"\$(\w+)", expr):
                    assert var in variables or var.startswith("__"), (where, var)
    logs = dash["meeting-rooms-service-logs.json"]
    errors = dash["meeting-rooms-error-tracking.json"]
    assert {"service", "level", "search", "request_id"} <= {
        v["name"] for v in logs["templating"]["list"]}
    request_panel = [p for p in logs["panels"] if "$request_id" in p["targets"][0]["expr"]]
    assert request_panel and request_panel[0]["type"] == "logs"
    exprs = " ".join(t["expr"] for p in errors["panels"] for t in p["targets"])
    assert 'status=~"5.."' in exprs and 'level="error"' in exprs
    assert "by (service, route)" in exprs
    # The request id links to the lines of that request (the service-logs dashboard).
    links = [link for p in errors["panels"]
             for o in p.get("fieldConfig", {}).get("overrides", [])
             if o["matcher"]["options"] == "request_id"
             for prop in o["properties"] if prop["id"] == "links" for link in prop["value"]]
    assert links and links[0]["url"].startswith(
        f"/d/{logs['uid']}?var-request_id=${{__value.raw}}")


def test_loki_datasource(logging_render, external_loki_render):
    for r, url in ((logging_render, f"http://{RELEASE}-loki.{NAMESPACE}.svc.cluster.local:3100"),
                   (external_loki_render, "https://loki.example.internal:8443")):
        (cm,) = [c for c in r.kind("ConfigMap")
                 if c["metadata"]["labels"].get("grafana_datasource") == "1"]
        (text,) = cm["data"].values()
        (ds,) = yaml.safe_load(text)["datasources"]
        assert ds["type"] == "loki" and ds["url"] == url
        (field,) = ds["jsonData"]["derivedFields"]
        assert field["datasourceUid"] == ds["uid"]
        assert re.search(field["matcherRegex"], '{"request_id":"abc-1","msg":"x"}').group(1) \
            == "abc-1"
        assert field["url"] == f'{{namespace="{NAMESPACE}"}} | request_id="${{__value.raw}}"'


# --- CloudWatch ----------------------------------------------------------------------------------

def test_fluent_bit_cloudwatch(logging_render, external_loki_render):
    conf = cm_data(logging_render, f"{RELEASE}-fluent-bit")["fluent-bit.conf"]
    assert f"Path              /var/log/pods/{NAMESPACE}_{RELEASE}-*/*/*.log" in conf
    assert re.search(r"^\s+Name\s+cloudwatch_logs$", conf, re.M)
    assert re.search(r"^\s+region\s+eu-west-1$", conf, re.M)
    assert re.search(r"^\s+log_group_name\s+/meeting-rooms/test$", conf, re.M)
    assert re.search(r"^\s+auto_create_group\s+Off$", conf, re.M)
    ds = logging_render.get("DaemonSet", f"{RELEASE}-fluent-bit")
    (c,) = ds["spec"]["template"]["spec"]["containers"]
    assert "env" not in c  # IRSA: no keys
    ds = external_loki_render.get("DaemonSet", f"{RELEASE}-fluent-bit")
    (c,) = ds["spec"]["template"]["spec"]["containers"]
    assert {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]} == {
        "AWS_ACCESS_KEY_ID": {"name": "rooms-aws", "key": "AWS_ACCESS_KEY_ID"},
        "AWS_SECRET_ACCESS_KEY": {"name": "rooms-aws", "key": "AWS_SECRET_ACCESS_KEY"}}
    sa = external_loki_render.get("ServiceAccount", f"{RELEASE}-fluent-bit")
    assert "annotations" not in sa["metadata"]


# --- Prometheus alerts ---------------------------------------------------------------------------

def rules_file(r, path):
    (rule,) = r.kind("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["spec"]) == {"groups"}
    for g in rule["spec"]["groups"]:
        assert set(g) == {"name", "rules"}
        for x in g["rules"]:
            assert set(x) <= {"alert", "expr", "for", "labels", "annotations"}, x
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    return [x["alert"] for g in rule["spec"]["groups"] for x in g["rules"]]


def promtool_dir(r, tmp_path):
    alerts = rules_file(r, tmp_path / "rules.yaml")
    tests = sorted(PROMTOOL_TESTS.glob("*.yaml"))
    for t in tests:
        shutil.copy(t, tmp_path / t.name)
    return alerts, [str(tmp_path / t.name) for t in tests]


def test_promtool_check_and_test_rules(logging_render, promtool_bin, tmp_path):
    alerts, tests = promtool_dir(logging_render, tmp_path)
    proc = subprocess.run([promtool_bin, "check", "rules", str(tmp_path / "rules.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(alerts)} rules found" in proc.stdout
    proc = subprocess.run([promtool_bin, "test", "rules", *tests], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAILED" not in proc.stdout + proc.stderr


def test_every_alert_has_a_firing_and_a_quiet_case(logging_render, tmp_path):
    alerts, _ = promtool_dir(logging_render, tmp_path)
    firing, quiet = set(), set()
    for t in PROMTOOL_TESTS.glob("*.yaml"):
        for case in yaml.safe_load(t.read_text())["tests"]:
            for check in case["alert_rule_test"]:
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == set(alerts), set(alerts) ^ firing
    assert quiet == set(alerts), set(alerts) ^ quiet


def test_promtool_tests_fail_when_the_thresholds_change(helm, promtool_bin, tmp_path):
    """The synthetic series sit between the default thresholds and these: with them raised,
    every alert with a threshold stops firing and its promtool case fails."""
    raised = {"enabled": True, "errorRatio": 0.5, "latencyP99Seconds": 5,
              "unavailableRatio": 0.5, "poolTimeouts10m": 100, "outboxBacklog": 1000,
              "consumerLag": 100000, "restarts30m": 10, "outboxAgeSeconds": 3600,
              "deliveryAgeSeconds": 7200, "deliveryFailed30m": 5}
    values = tmp_path / "raised.yaml"
    values.write_text(yaml.safe_dump({"monitoring": {"prometheusRule": raised}}))
    r = helm.template(files=(str(values),))
    assert r.returncode == 0, r.stderr
    _, tests = promtool_dir(r, tmp_path)
    proc = subprocess.run([promtool_bin, "test", "rules", *tests], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for alert in ("MeetingRoomsHigh5xxRate", "MeetingRoomsHighLatencyP99",
                  "MeetingRoomsHigh503Rate", "MeetingRoomsDBPoolTimeouts",
                  "MeetingRoomsOutboxBacklogGrowing", "MeetingRoomsConsumerLag",
                  "MeetingRoomsPodRestarts", "MeetingRoomsOutboxStale",
                  "MeetingRoomsDeliveryQueueStale", "MeetingRoomsDeliveriesFailing"):
        assert f"alertname: {alert}," in out, alert


LAG = 'kafka_consumergroup_lag{job="kafka-exporter",namespace="kafka",partition="0",'
CONSUMER_LAG_TEST = {
    "rule_files": ["rules.yaml"], "evaluation_interval": "1m",
    "tests": [{"interval": "1m", "input_series": [
        {"series": LAG + 'cluster="rooms",consumergroup="reservation-service"}',
         "values": "2000x30"},
        {"series": LAG + 'cluster="other",consumergroup="room-service"}', "values": "50000x30"}],
        "alert_rule_test": [{"eval_time": "20m", "alertname": "MeetingRoomsConsumerLag",
                             "exp_alerts": [{
                                 "exp_labels": {"severity": "warning", "namespace": "rooms",
                                                "consumergroup": "reservation-service"},
                                 "exp_annotations": {
                                     "summary": "consumer group reservation-service lags behind",
                                     "description": "Consumer lag is 2000 messages."}}]}]}]}


def test_consumer_lag_reads_only_the_chosen_exporter(helm, promtool_bin, tmp_path):
    """Another Kafka's exporter reporting the same group names (cluster="other") is not this
    release's lag once kafkaExporterSelector picks the exporter; the alert routes by the
    release's namespace, not the exporter's."""
    values = tmp_path / "selector.yaml"
    values.write_text(yaml.safe_dump({"monitoring": {"prometheusRule": {
        "enabled": True, "kafkaExporterSelector": 'job="kafka-exporter",cluster="rooms"'}}}))
    r = helm.template(files=(str(values),))
    assert r.returncode == 0, r.stderr
    rules_file(r, tmp_path / "rules.yaml")
    (tmp_path / "lag.yaml").write_text(yaml.safe_dump(CONSUMER_LAG_TEST))
    proc = subprocess.run([promtool_bin, "test", "rules", "lag.yaml"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"monitoring": {"prometheusRule": {
        "enabled": True, "kafkaExporterSelector": 'job="x"} or vector(1) #'}}}))
    r = helm.template(files=(str(bad),))
    assert r.returncode != 0 and "kafkaExporterSelector" in r.stderr, r.stderr


def test_every_alert_has_a_runbook_paragraph(logging_render, tmp_path):
    alerts, _ = promtool_dir(logging_render, tmp_path)
    alerts += [x["alert"] for x in loki_rules(logging_render)]
    readme = (CHART / "README.md").read_text()
    section = readme.split("## Alerts", 1)[1].split("\n## ", 1)[0]
    for alert in alerts:
        m = re.search(rf"^\*\*{alert}\*\* .{{80,}}", section, re.M)
        assert m, f"README 'Alerts' has no runbook paragraph for {alert}"


# --- Alertmanager --------------------------------------------------------------------------------

def test_alertmanager_config_emails_the_admins(logging_render):
    (amc,) = logging_render.kind("AlertmanagerConfig")
    assert amc["apiVersion"] == "monitoring.coreos.com/v1alpha1"
    route = amc["spec"]["route"]
    assert route["receiver"] == "admins-email"
    assert route["matchers"] == [{"name": "alertname", "matchType": "=~",
                                  "value": "MeetingRooms.*"}]
    (receiver,) = amc["spec"]["receivers"]
    assert receiver["name"] == "admins-email"
    assert [e["to"] for e in receiver["emailConfigs"]] == ADMINS
    for e in receiver["emailConfigs"]:
        assert e["smarthost"] == "smtp.example.com:587" and e["from"] == "alerts@example.com"
        assert e["authPassword"] == {"name": "rooms-smtp", "key": "password"}
        assert e["requireTLS"] is True and e["sendResolved"] is True
    # No place for a password in values: only the Secret reference.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["alerting"]["alertmanagerConfig"]["authPasswordSecret"]) == {"name", "key"}
    assert not [k for k in values["alerting"]["alertmanagerConfig"] if "password" == k.lower()]
