"""Offline checks of the Helm chart helm/meeting-rooms.

helm lint --strict and helm template (Kubernetes 1.30) for every environment, schema validation of
every rendered manifest with kubernetes-validate (strict), hardening of every workload, secrets
that never come from defaults, the gateway's nginx configuration (byte-equal to
files/gateway.conf after the replacements, and accepted by `nginx -t`), external PostgreSQL and
Kafka, autoscaling and disruption budgets, monitoring objects, and the PostgreSQL init script run
against a real private PostgreSQL 15 when its binaries are installed.
"""

import base64
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "meeting-rooms"
KUBE_VERSION = "1.30.0"
RELEASE = "mr"
NAMESPACE = "rooms"
ENVIRONMENTS = ["development", "staging", "production"]

# Test-only secrets: passed with --set-string, never stored in values files.
SECRETS = {
    "secrets.jwtSecretKey": "test-only-jwt-key-0123456789abcdefghijkl",
    "secrets.googleClientId": "test-only-client.apps.example.test",
    "secrets.googleClientSecret": "test-only-google-client-secret",
    "secrets.jitsiAppSecret": "test-only-jitsi-app-secret-0123456789",
    "postgresql.auth.password": "test-only-app-db-password",
    "postgresql.auth.postgresPassword": "test-only-admin-db-password",
}

SERVICES = {  # component -> (port, database)
    "user-service": (5000, "user_db"),
    "room-service": (5001, "room_db"),
    "reservation-service": (5002, "reservation_db"),
}
TOPICS = ["room_events", "user_events", "reservation_events"]
METRICS = ["http_requests_total", "http_request_duration_seconds_bucket", "outbox_backlog",
           "kafka_messages_consumed_total", "kafka_dlq_messages_total"]
# Kinds whose schemas are not part of Kubernetes (Prometheus Operator CRDs).
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "AlertmanagerConfig"}

EXTERNAL_VALUES = {
    "postgresql": {"enabled": False},
    "externalDatabase": {"host": "db.example.internal", "port": 6432, "user": "rooms_app",
                         "sslmode": "verify-full",
                         "passwordSecret": {"name": "rooms-db", "key": "pw"}},
    "kafka": {"enabled": False},
    "externalKafka": {"brokers": ["b1.kafka.internal:9092", "b2.kafka.internal:9092"]},
}
MONITORING_SETS = {
    "monitoring.serviceMonitor.enabled": "true",
    "monitoring.prometheusRule.enabled": "true",
    "monitoring.grafanaDashboard.enabled": "true",
    "ingress.enabled": "true",
    "gateway.autoscaling.enabled": "true",
}


class Render:
    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.docs = []
        if proc.returncode == 0:
            self.docs = [d for d in yaml.safe_load_all(proc.stdout) if d]

    def kind(self, kind):
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind, name):
        found = [d for d in self.kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def workloads(self):
        return [d for d in self.docs if d["kind"] in ("Deployment", "StatefulSet")]


@pytest.fixture(scope="session")
def external_values_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("values") / "external.yaml"
    path.write_text(yaml.safe_dump(EXTERNAL_VALUES))
    return str(path)


@pytest.fixture(scope="session")
def helm(helm_bin, helm_env):
    """helm(*args) -> CompletedProcess; template(...) -> cached Render."""

    def run(*args):
        return subprocess.run([helm_bin, *args], capture_output=True, text=True, env=helm_env,
                              timeout=120)

    @functools.cache
    def template(files=(), sets=(), secrets=True):
        args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                "--kube-version", KUBE_VERSION]
        for f in files:
            args += ["-f", f]
        all_sets = dict(SECRETS) if secrets else {}
        all_sets.update(dict(sets))
        for k, v in all_sets.items():
            args += ["--set-string" if isinstance(v, str) and v not in ("true", "false")
                     else "--set", f"{k}={v}"]
        return Render(run(*args))

    run.template = template
    return run


def env_file(env):
    return str(CHART / f"values-{env}.yaml")


@pytest.fixture(scope="session")
def variants(helm, external_values_file):
    """The renders every generic check runs on."""
    out = {"default": lambda: helm.template()}
    for env in ENVIRONMENTS:
        out[env] = functools.partial(helm.template, (env_file(env),))
    out["monitoring"] = functools.partial(helm.template, (),
                                          tuple(sorted(MONITORING_SETS.items())))
    out["external"] = functools.partial(helm.template, (env_file("production"),
                                                        external_values_file))
    return out


VARIANTS = ["default", *ENVIRONMENTS, "monitoring", "external"]


def rendered(variants, name):
    r = variants[name]()
    assert r.returncode == 0, f"helm template ({name}) failed:\n{r.stderr}"
    return r


def container_env(container):
    return {e["name"]: e for e in container.get("env", [])}


def svc_name(component):
    return f"{RELEASE}-{component}"


# --- chart metadata and lint ---------------------------------------------------------------------

def test_chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "meeting-rooms"
    assert chart["version"] == "0.1.0"
    assert chart.get("appVersion")
    for f in ["values.yaml", *(f"values-{e}.yaml" for e in ENVIRONMENTS), "templates/NOTES.txt",
              "files/gateway.conf"]:
        assert (CHART / f).is_file(), f


@pytest.mark.parametrize("env", ["default", *ENVIRONMENTS])
def test_helm_lint_strict(helm, env):
    args = ["lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION]
    if env != "default":
        args += ["-f", env_file(env)]
    for k, v in SECRETS.items():
        args += ["--set-string", f"{k}={v}"]
    proc = helm(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


# --- schema validation ---------------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_manifests_validate_against_kubernetes_schemas(variants, variant, kubernetes_validate_bin,
                                                       tmp_path):
    r = rendered(variants, variant)
    docs = [d for d in r.docs if d["kind"] not in CRD_KINDS]
    assert len(docs) >= 15
    for d in docs:
        assert d.get("apiVersion") and d["metadata"].get("name"), d
    path = tmp_path / f"{variant}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    proc = subprocess.run([kubernetes_validate_bin, "--strict", "--quiet", "-k", KUBE_VERSION,
                           str(path)], capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "ERROR" not in out and "Couldn't find schema" not in out, out


def test_kubernetes_validate_rejects_bad_manifests(kubernetes_validate_bin, tmp_path):
    """The validator really is strict (guards against a silently permissive install)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  bogus: 1\n")
    proc = subprocess.run([kubernetes_validate_bin, "--strict", "--quiet", "-k", KUBE_VERSION,
                           str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "bogus" in proc.stdout + proc.stderr


# --- workloads -----------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["default", *ENVIRONMENTS, "external"])
def test_workloads_are_probed_limited_and_hardened(variants, variant):
    r = rendered(variants, variant)
    workloads = r.workloads()
    names = {w["metadata"]["name"] for w in workloads}
    expected = {svc_name(c) for c in SERVICES} | {f"{RELEASE}-gateway"}
    if variant != "external":
        expected |= {f"{RELEASE}-postgresql", f"{RELEASE}-kafka"}
    assert names == expected

    for w in workloads:
        name = w["metadata"]["name"]
        component = w["metadata"]["labels"]["app.kubernetes.io/component"]
        pod = w["spec"]["template"]["spec"]
        pod_sc = pod.get("securityContext", {})
        assert pod.get("automountServiceAccountToken") is False, name
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        for c in pod["containers"]:
            where = f"{name}/{c['name']}"
            assert c.get("readinessProbe"), f"{where}: no readinessProbe"
            assert c.get("livenessProbe"), f"{where}: no livenessProbe"
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(part, {})), f"{where}: resources.{part}"
            sc = c.get("securityContext", {})
            run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            assert run_as_non_root is True, f"{where}: runAsNonRoot"
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            assert isinstance(uid, int) and uid > 0, f"{where}: runAsUser {uid}"
            assert sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
            assert sc.get("privileged", False) is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities"
            if component in SERVICES or component == "gateway":
                assert sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"

        if component in SERVICES:
            port, _ = SERVICES[component]
            (c,) = pod["containers"]
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            assert ports == {"http": port}
            assert w["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
            assert c["securityContext"]["runAsUser"] == 10001
            for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/live")):
                get = c[probe]["httpGet"]
                assert get["path"] == path, f"{name} {probe}"
                assert ports.get(get["port"], get["port"]) == port, f"{name} {probe} port"
            if "startupProbe" in c:
                assert c["startupProbe"]["httpGet"]["path"] == "/live"
            ann = w["spec"]["template"]["metadata"]["annotations"]
            assert ann["prometheus.io/scrape"] == "true"
            assert ann["prometheus.io/port"] == str(port)
            assert ann["prometheus.io/path"] == "/metrics"
            assert pod["serviceAccountName"] == f"{RELEASE}-meeting-rooms"


def test_service_account_does_not_mount_tokens(variants):
    r = rendered(variants, "default")
    (sa,) = r.kind("ServiceAccount")
    assert sa["automountServiceAccountToken"] is False


@pytest.mark.parametrize("variant", ["default", "production", "external"])
def test_services_environment(variants, variant):
    r = rendered(variants, variant)
    cm = r.get("ConfigMap", f"{RELEASE}-config")
    for component, (port, db) in SERVICES.items():
        dep = r.get("Deployment", svc_name(component))
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        assert c["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-config"}}]
        env = container_env(c)
        names = [e["name"] for e in c["env"]]
        assert env["PORT"]["value"] == str(port)
        # $(VAR) expansion only sees variables defined earlier in the list.
        assert names.index("PG_USER") < names.index("DATABASE_URL")
        assert names.index("PG_PASSWORD") < names.index("DATABASE_URL")
        url = env["DATABASE_URL"]["value"]
        assert url.startswith("postgresql://$(PG_USER):$(PG_PASSWORD)@"), url
        assert re.search(rf"/{db}\?sslmode=", url), url
        assert "secretKeyRef" in env["PG_PASSWORD"]["valueFrom"]
        jwt = env["JWT_SECRET_KEY"]["valueFrom"]["secretKeyRef"]
        assert jwt == {"name": f"{RELEASE}-meeting-rooms", "key": "JWT_SECRET_KEY"}
        if component == "user-service":
            for k in ("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"):
                assert env[k]["valueFrom"]["secretKeyRef"]["key"] == k
        # The Jitsi app secret reaches reservation-service only, from the Secret.
        assert ("JITSI_APP_SECRET" in env) == (component == "reservation-service"), env
        if component == "reservation-service":
            assert env["JITSI_APP_SECRET"]["valueFrom"]["secretKeyRef"] == {
                "name": f"{RELEASE}-meeting-rooms", "key": "JITSI_APP_SECRET",
                "optional": True}
        # The Service in front of it.
        svc = r.get("Service", svc_name(component))
        assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(port, "http")]
        assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    if variant == "external":
        assert "@db.example.internal:6432/" in url and url.endswith("sslmode=verify-full")
        assert env["PG_USER"]["value"] == "rooms_app"
        assert env["PG_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "rooms-db",
                                                                   "key": "pw"}
    else:
        assert f"@{RELEASE}-postgresql:5432/" in url
        assert env["PG_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": f"{RELEASE}-postgresql", "key": "password"}
    assert cm["data"]["LOG_LEVEL"] in ("debug", "info", "warn", "error")
    for t in ("ROOM_EVENTS_TOPIC", "USER_EVENTS_TOPIC", "RESERVATION_EVENTS_TOPIC"):
        assert cm["data"][t] in TOPICS


def test_configmap_holds_only_documented_non_secret_settings(variants):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            documented |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    assert {"DATABASE_URL", "JWT_SECRET_KEY", "LOG_LEVEL"} <= documented
    documented |= {"RATE_LIMIT_AUTH_PER_MINUTE", "TRUSTED_GATEWAYS"}  # user-service's own
    for variant in ("default", *ENVIRONMENTS):
        data = rendered(variants, variant).get("ConfigMap", f"{RELEASE}-config")["data"]
        assert set(data) <= documented, set(data) - documented
        for secretish in ("JWT_SECRET_KEY", "GOOGLE_CLIENT_SECRET", "GOOGLE_CLIENT_ID",
                          "DATABASE_URL", "JITSI_APP_SECRET"):
            assert secretish not in data
        assert all(isinstance(v, str) and v for v in data.values())


def test_images_and_tags(helm):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    r = helm.template()
    for component in SERVICES:
        (c,) = r.get("Deployment", svc_name(component))["spec"]["template"]["spec"]["containers"]
        assert c["image"] == f"meeting-rooms-{component}:{chart['appVersion']}"
    r = helm.template(sets=(("image.registry", "ghcr.io/acme/"), ("image.tag", "sha-0123abc")))
    assert r.returncode == 0, r.stderr
    for component in SERVICES:
        (c,) = r.get("Deployment", svc_name(component))["spec"]["template"]["spec"]["containers"]
        assert c["image"] == f"ghcr.io/acme/meeting-rooms-{component}:sha-0123abc"
    images = {c["image"] for w in r.workloads()
              for c in w["spec"]["template"]["spec"]["containers"]}
    assert "postgres:15-bookworm" in images
    assert "apache/kafka:3.9.1" in images
    assert any(i.startswith("nginxinc/nginx-unprivileged:") for i in images)


def test_notes_render(helm_bin, helm_env, tmp_path):
    """NOTES.txt is not printed by `helm template`: render it as a ConfigMap in a copy of the
    chart."""
    chart = tmp_path / "meeting-rooms"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    # Its first line (the values check) trims the following newline; it renders nothing anyway.
    notes = notes.replace('{{- include "mr.validate" . -}}\n', "", 1)
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n"
        + "".join(f"    {line}\n" for line in notes.splitlines()))
    args = [helm_bin, "template", RELEASE, str(chart), "--namespace", NAMESPACE,
            "--kube-version", KUBE_VERSION, "--show-only", "templates/zz-notes.yaml"]
    for k, v in SECRETS.items():
        args += ["--set-string", f"{k}={v}"]
    proc = subprocess.run(args, capture_output=True, text=True, env=helm_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = yaml.safe_load(proc.stdout)["data"]["notes"]
    assert f"port-forward svc/{RELEASE}-gateway 8080:80" in text
    assert "open http://localhost:8080/ (the web app" in text
    assert f"{RELEASE}-kafka-0.{RELEASE}-kafka-headless" in text
    assert "user-service token --email" in text
    assert "{{" not in text and "<no value>" not in text


# --- secrets -------------------------------------------------------------------------------------

def test_values_files_hold_no_secrets():
    for f in ["values.yaml", *(f"values-{e}.yaml" for e in ENVIRONMENTS)]:
        values = yaml.safe_load((CHART / f).read_text()) or {}
        for dotted in SECRETS:
            node = values
            for part in dotted.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            assert node in (None, ""), f"{f}: {dotted} must not be set in a values file"


@pytest.mark.parametrize("missing,message", [
    ("all", "secrets.jwtSecretKey is required"),
    ("secrets.jwtSecretKey", "secrets.jwtSecretKey is required"),
    ("postgresql.auth.password", "postgresql.auth.password is required"),
    ("postgresql.auth.postgresPassword", "postgresql.auth.postgresPassword is required"),
    ("secrets.googleClientSecret", "secrets.googleClientSecret is required when"),
])
def test_template_without_secrets_fails_clearly(helm, missing, message):
    args = ["template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION]
    if missing != "all":
        for k, v in SECRETS.items():
            if k != missing:
                args += ["--set-string", f"{k}={v}"]
    proc = helm(*args)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    if missing == "all":  # one message lists everything that is missing
        for key in ("secrets.jwtSecretKey", "postgresql.auth.password",
                    "postgresql.auth.postgresPassword"):
            assert f"{key} is required" in proc.stderr
    assert proc.stdout.strip() == "", "nothing is rendered when values are missing"


@pytest.mark.parametrize("key,value,message", [
    ("secrets.jwtSecretKey", "too-short-secret", "at least 32 bytes"),
    ("postgresql.auth.password", "p@ss word", "may only contain"),
])
def test_bad_secret_values_are_refused(helm, key, value, message):
    r = helm.template(sets=((key, value),))
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


def test_rendered_secrets_hold_exactly_what_was_given(variants):
    given = set(SECRETS.values())
    for variant in ("default", *ENVIRONMENTS, "monitoring"):
        r = rendered(variants, variant)
        secrets = r.kind("Secret")
        assert {s["metadata"]["name"] for s in secrets} == {f"{RELEASE}-meeting-rooms",
                                                            f"{RELEASE}-postgresql"}
        seen = set()
        for s in secrets:
            assert not s.get("stringData"), s["metadata"]["name"]
            for key, b64 in s["data"].items():
                value = base64.b64decode(b64).decode()
                assert value in given, f"{s['metadata']['name']}/{key} holds a value nobody gave"
                seen.add(value)
        assert seen == given
        # No secret value leaks into anything but Secrets (ConfigMaps, env values, annotations).
        others = yaml.safe_dump_all([d for d in r.docs if d["kind"] != "Secret"])
        for v in given:
            assert v not in others, f"{variant}: a secret value appears outside a Secret"


def test_existing_secrets_render_no_secret_objects(helm):
    r = helm.template(secrets=False, sets=(("secrets.existingSecret", "rooms-app"),
                                           ("postgresql.auth.existingSecret", "rooms-pg")))
    assert r.returncode == 0, r.stderr
    assert r.kind("Secret") == []
    for component in SERVICES:
        (c,) = r.get("Deployment", svc_name(component))["spec"]["template"]["spec"]["containers"]
        env = container_env(c)
        assert env["JWT_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "rooms-app"
        assert env["PG_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "rooms-pg"
    (pg,) = r.get("StatefulSet", f"{RELEASE}-postgresql")["spec"]["template"]["spec"]["containers"]
    env = container_env(pg)
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "rooms-pg", "key": "postgres-password"}
    assert env["APP_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "rooms-pg",
                                                                   "key": "password"}


# --- gateway -------------------------------------------------------------------------------------

def web_version(web=ROOT / "web"):
    """The web app's version as the chart and scripts/nginx.sh compute it: the first 12 hex
    digits of a sha256 over every file, each as its path, a newline and its content, in the byte
    order of the paths."""
    files = sorted((p.relative_to(web).as_posix().encode(), p) for p in web.rglob("*")
                   if p.is_file())
    return hashlib.sha256(b"".join(name + b"\n" + p.read_bytes()
                                   for name, p in files)).hexdigest()[:12]


def expected_gateway_conf():
    text = (CHART / "files" / "gateway.conf").read_text()
    for placeholder, value in {
        "${GATEWAY_LISTEN}": "8080",
        # Each service's Kubernetes Service twice in the retry group, once in the other.
        **{f"${{{svc.upper()}_RETRY_SERVERS}}": f"server {RELEASE}-{svc}-service:{port} "
           f"max_fails=0;\n    server {RELEASE}-{svc}-service:{port} max_fails=0;"
           for svc, port in (("user", 5000), ("room", 5001), ("reservation", 5002))},
        **{f"${{{svc.upper()}_ONCE_SERVERS}}": f"server {RELEASE}-{svc}-service:{port};"
           for svc, port in (("user", 5000), ("room", 5001), ("reservation", 5002))},
        "${REAL_IP_FROM}": "",  # gateway.trustedProxies: [] by default
        "${AUTH_RATE_PER_MINUTE}": "30",
        "${AUTH_BURST}": "30",
        "${AUTH_RETRY_AFTER}": "2",
        "${REFRESH_RATE_PER_MINUTE}": "600",
        "${REFRESH_BURST}": "600",
        "${REFRESH_RETRY_AFTER}": "1",
        "${CONN_PER_CLIENT}": "256",
        "${UPSTREAM_KEEPALIVE}": "16",
        "${WEB_ROOT}": "/usr/share/nginx/web",
        "${WEB_VERSION}": web_version(),
    }.items():
        assert placeholder in text
        text = text.replace(placeholder, value)
    return text


def test_gateway_config_is_the_shared_file_with_placeholders_filled(variants):
    for variant in ("default", "production"):
        cm = rendered(variants, variant).get("ConfigMap", f"{RELEASE}-gateway")
        conf = cm["data"]["gateway.conf"]
        assert conf.rstrip("\n") == expected_gateway_conf().rstrip("\n")
        assert "${" not in conf
        main = cm["data"]["nginx.conf"]
        http = main[main.index("http {"):]
        assert "include gateway.conf;" in http
        # The access log uses the gateway's log_format, so it must come after the include.
        assert re.search(r"include gateway\.conf;\s*\n\s*"
                         r"access_log /dev/stdout gateway buffer=64k flush=1s;", http)
        assert "pid /tmp/nginx.pid;" in main
        for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            assert f"{temp}_temp_path /tmp/" in main


def test_gateway_locations_are_each_written_once():
    """nginx accepts two identical regex locations (the first wins), so a duplicate left by a
    merge would go unnoticed: each location line appears once."""
    lines = [ln.strip() for ln in (CHART / "files" / "gateway.conf").read_text().splitlines()
             if ln.strip().startswith("location ")]
    assert lines and len(lines) == len(set(lines)), sorted(
        ln for ln in lines if lines.count(ln) > 1)


@pytest.mark.skipif(shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"),
                    reason="nginx is not installed")
def test_gateway_nginx_config_passes_nginx_t(variants, tmp_path):
    cm = rendered(variants, "default").get("ConfigMap", f"{RELEASE}-gateway")
    main, conf = cm["data"]["nginx.conf"], cm["data"]["gateway.conf"]
    # Service names do not resolve here: point the upstreams at 127.0.0.1, and the /tmp paths at
    # a private directory.
    conf, n = re.subn(rf"server {RELEASE}-(user|room|reservation)-service:", "server 127.0.0.1:",
                      conf)
    assert n == 9  # per service: twice in the retry group, once in the other
    main = main.replace("/tmp/", f"{tmp_path}/")
    (tmp_path / "nginx.conf").write_text(main)
    (tmp_path / "gateway.conf").write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.run([nginx, "-t", "-e", "stderr", "-p", f"{tmp_path}/", "-c",
                           str(tmp_path / "nginx.conf")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "test is successful" in proc.stderr


def test_gateway_workload_and_service(variants):
    r = rendered(variants, "default")
    dep = r.get("Deployment", f"{RELEASE}-gateway")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"].startswith("nginxinc/nginx-unprivileged:")
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["command"] + c["args"] == ["nginx", "-c", "/etc/nginx/gateway/nginx.conf", "-g",
                                        "daemon off;"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts["/etc/nginx/gateway"] == "config" and mounts["/tmp"] == "tmp"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["config"]["configMap"]["name"] == f"{RELEASE}-gateway"
    svc = r.get("Service", f"{RELEASE}-gateway")
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(80, "http")]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert r.kind("Ingress") == []  # disabled by default
    # The checksum annotation rolls the pods when the configuration changes.
    assert len(dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]) == 64


def test_ingress_when_enabled(variants):
    r = rendered(variants, "monitoring")
    (ing,) = r.kind("Ingress")
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{RELEASE}-gateway", "port": {"name": "http"}}


# --- PostgreSQL and Kafka ------------------------------------------------------------------------

def test_postgresql_statefulset(variants):
    r = rendered(variants, "production")
    sts = r.get("StatefulSet", f"{RELEASE}-postgresql")
    pod = sts["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == "postgres:15-bookworm"
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["exec"]["command"][0] == "pg_isready"
    (vct,) = sts["spec"]["volumeClaimTemplates"]
    assert vct["metadata"]["name"] == "data"
    assert vct["spec"]["resources"]["requests"]["storage"] == "50Gi"
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts["/var/lib/postgresql/data"] == "data"
    init_vol = {v["name"]: v for v in pod["volumes"]}[mounts["/docker-entrypoint-initdb.d"]]
    cm = r.get("ConfigMap", init_vol["configMap"]["name"])
    (script,) = cm["data"].values()
    assert "btree_gist" in script
    env = container_env(c)
    assert env["APP_DATABASES"]["value"].split() == ["user_db", "room_db", "reservation_db"]
    assert env["RESERVATION_DB"]["value"] == "reservation_db"
    assert env["APP_DB_USER"]["value"] == "meeting_rooms"
    proc = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    headless = r.get("Service", f"{RELEASE}-postgresql-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    assert r.get("Service", f"{RELEASE}-postgresql")["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize("env,replicas,rf,min_isr", [("default", 1, "1", "1"),
                                                     ("development", 1, "1", "1"),
                                                     ("production", 3, "3", "2")])
def test_kafka_kraft_statefulset(variants, env, replicas, rf, min_isr):
    r = rendered(variants, env)
    sts = r.get("StatefulSet", f"{RELEASE}-kafka")
    assert sts["spec"]["replicas"] == replicas
    (c,) = sts["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "apache/kafka:3.9.1"
    e = {k: v.get("value") for k, v in container_env(c).items()}
    assert e["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert e["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert e["CLUSTER_ID"] and len(e["CLUSTER_ID"]) == 22
    voters = e["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    headless = f"{RELEASE}-kafka-headless.{NAMESPACE}.svc.cluster.local"
    assert voters == [f"{i}@{RELEASE}-kafka-{i}.{headless}:9093" for i in range(replicas)]
    assert e["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == rf
    assert e["KAFKA_DEFAULT_REPLICATION_FACTOR"] == rf
    assert e["KAFKA_MIN_INSYNC_REPLICAS"] == min_isr
    assert e["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    script = c["command"][-1]
    assert "KAFKA_NODE_ID" in script and "exec /etc/kafka/docker/run" in script
    assert sts["spec"]["template"]["spec"]["enableServiceLinks"] is False  # no KAFKA_PORT etc.
    (vct,) = sts["spec"]["volumeClaimTemplates"]
    assert {m["mountPath"]: m["name"] for m in c["volumeMounts"]}["/var/lib/kafka/data"] == \
        vct["metadata"]["name"]
    svc = r.get("Service", f"{RELEASE}-kafka-headless")
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"]
    brokers = r.get("ConfigMap", f"{RELEASE}-config")["data"]["KAFKA_BROKER_URL"].split(",")
    assert brokers == [f"{RELEASE}-kafka-{i}.{headless}:9092" for i in range(replicas)]
    assert len([p for p in r.kind("PodDisruptionBudget")
                if p["metadata"]["name"] == f"{RELEASE}-kafka"]) == (1 if replicas > 1 else 0)


@pytest.mark.parametrize("variant", ["default", "production", "external"])
def test_kafka_topics_job(variants, variant):
    r = rendered(variants, variant)
    job = r.get("Job", f"{RELEASE}-kafka-topics")
    ann = job["metadata"]["annotations"]
    assert set(ann["helm.sh/hook"].split(",")) == {"post-install", "post-upgrade"}
    assert "before-hook-creation" in ann["helm.sh/hook-delete-policy"]
    (c,) = job["spec"]["template"]["spec"]["containers"]
    env = {k: v["value"] for k, v in container_env(c).items()}
    assert env["TOPICS"].split() == TOPICS
    script = c["command"][-1]
    assert "kafka-topics.sh" in script and '"$t.dlq"' in script and "--if-not-exists" in script
    proc = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    brokers = r.get("ConfigMap", f"{RELEASE}-config")["data"]["KAFKA_BROKER_URL"]
    assert env["BOOTSTRAP"] == brokers
    want = {"default": "1", "production": "3", "external": "3"}[variant]
    assert env["REPLICATION_FACTOR"] == want


def test_external_database_and_kafka_render_no_bundled_parts(variants):
    r = rendered(variants, "external")
    assert r.kind("StatefulSet") == []
    components = {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in r.docs
                  if "labels" in d["metadata"]}
    assert not components & {"postgresql", "kafka"}
    assert {s["metadata"]["name"] for s in r.kind("Secret")} == {f"{RELEASE}-meeting-rooms"}
    cm = r.get("ConfigMap", f"{RELEASE}-config")
    assert cm["data"]["KAFKA_BROKER_URL"] == "b1.kafka.internal:9092,b2.kafka.internal:9092"


@pytest.mark.parametrize("sets,message", [
    ((("postgresql.enabled", "false"),), "externalDatabase.host is required"),
    ((("postgresql.enabled", "false"), ("externalDatabase.host", "db"),
      ("externalDatabase.user", "u")), "externalDatabase.passwordSecret.name is required"),
    ((("kafka.enabled", "false"),), "externalKafka.brokers is required"),
    ((("kafka.replicas", 2),), "kafka.replicas"),
    ((("secrets.jwtSecret", "typo"),), "jwtSecret is not allowed"),
])
def test_incomplete_external_settings_fail_clearly(helm, sets, message):
    r = helm.template(sets=sets)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


SECURE_EXTERNAL_VALUES = {
    **EXTERNAL_VALUES,
    "externalDatabase": {**EXTERNAL_VALUES["externalDatabase"],
                         "tls": {"caSecret": {"name": "db-ca", "key": "root.pem"},
                                 "clientSecret": {"name": "db-client"}}},
    "externalKafka": {**EXTERNAL_VALUES["externalKafka"], "securityProtocol": "SASL_SSL",
                      "sasl": {"mechanism": "SCRAM-SHA-512", "username": "rooms",
                               "passwordSecret": {"name": "kafka-auth", "key": "pw"}},
                      "tls": {"caSecret": {"name": "kafka-ca"},
                              "clientSecret": {"name": "kafka-client"}}},
}


def test_external_database_and_kafka_over_tls_and_sasl(helm, tmp_path):
    """Certificates come from Secrets as mounted files named in the settings; the SASL password
    only as a secretKeyRef; the topic Job gets the same settings as the services."""
    values = tmp_path / "secure.yaml"
    values.write_text(yaml.safe_dump(SECURE_EXTERNAL_VALUES))
    r = helm.template(files=(str(values),))
    assert r.returncode == 0, r.stderr
    want_kafka = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                  "KAFKA_SASL_USERNAME": "rooms",
                  "KAFKA_SSL_CA_LOCATION": "/etc/meeting-rooms/kafka/ca.crt",
                  "KAFKA_SSL_CERTIFICATE_LOCATION": "/etc/meeting-rooms/kafka/client.crt",
                  "KAFKA_SSL_KEY_LOCATION": "/etc/meeting-rooms/kafka/client.key"}
    kafka_volume = {"name": "kafka-tls", "projected": {"defaultMode": 0o440, "sources": [
        {"secret": {"name": "kafka-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"secret": {"name": "kafka-client", "items": [{"key": "tls.crt", "path": "client.crt"},
                                                      {"key": "tls.key", "path": "client.key"}]}},
    ]}}
    pods = [(r.get("Deployment", svc_name(c))["spec"]["template"]["spec"], db)
            for c, (_, db) in SERVICES.items()]
    pods.append((r.get("Job", f"{RELEASE}-kafka-topics")["spec"]["template"]["spec"], None))
    for pod, db in pods:
        (c,) = pod["containers"]
        env = container_env(c)
        for k, v in want_kafka.items():
            assert env[k]["value"] == v, (k, env.get(k))
        assert env["KAFKA_SASL_PASSWORD"] == {"name": "KAFKA_SASL_PASSWORD", "valueFrom": {
            "secretKeyRef": {"name": "kafka-auth", "key": "pw"}}}
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        assert volumes["kafka-tls"] == kafka_volume
        assert mounts["kafka-tls"] == {"name": "kafka-tls", "mountPath": "/etc/meeting-rooms/kafka",
                                       "readOnly": True}
        if db is None:  # the Job: a client properties file from the same settings
            script = c["command"][-1]
            assert "--command-config" in script and "sasl.jaas.config" in script
            assert "ssl.truststore.location" in script and "ssl.keystore.location" in script
            proc = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
            continue
        assert env["DATABASE_URL"]["value"].endswith(
            f"/{db}?sslmode=verify-full&sslrootcert=/etc/meeting-rooms/postgresql/ca.crt"
            "&sslcert=/etc/meeting-rooms/postgresql/client.crt"
            "&sslkey=/etc/meeting-rooms/postgresql/client.key")
        assert volumes["postgresql-tls"]["projected"]["sources"] == [
            {"secret": {"name": "db-ca", "items": [{"key": "root.pem", "path": "ca.crt"}]}},
            {"secret": {"name": "db-client", "items": [{"key": "tls.crt", "path": "client.crt"},
                                                       {"key": "tls.key",
                                                        "path": "client.key"}]}}]
        assert volumes["postgresql-tls"]["projected"]["defaultMode"] == 0o440
        assert mounts["postgresql-tls"]["mountPath"] == "/etc/meeting-rooms/postgresql"
    # Without these settings nothing of it is rendered.
    plain = helm.template(files=(env_file("production"),))
    assert plain.returncode == 0, plain.stderr
    for doc in plain.kind("Deployment"):
        text = yaml.safe_dump(doc)
        assert "KAFKA_SECURITY_PROTOCOL" not in text and "kafka-tls" not in text
        assert "sslrootcert" not in text


@pytest.mark.parametrize("ca,sslmode,want", [
    (False, None, "require"),          # encrypted; nothing to verify against
    (True, None, "verify-full"),       # a CA: the certificate and the host name are checked
    (True, "verify-ca", "verify-ca"),  # an explicit choice stays
    (True, "require", "require"),
    (False, "disable", "disable"),
])
def test_external_database_sslmode_defaults_to_verify_full_with_a_ca(helm, tmp_path, ca,
                                                                      sslmode, want):
    db = {k: v for k, v in EXTERNAL_VALUES["externalDatabase"].items() if k != "sslmode"}
    if sslmode:
        db["sslmode"] = sslmode
    if ca:
        db["tls"] = {"caSecret": {"name": "db-ca"}}
    values = tmp_path / "db.yaml"
    values.write_text(yaml.safe_dump({**EXTERNAL_VALUES, "externalDatabase": db}))
    r = helm.template(files=(str(values),))
    assert r.returncode == 0, r.stderr
    for component, (_, dbname) in SERVICES.items():
        (c,) = r.get("Deployment", svc_name(component))["spec"]["template"]["spec"]["containers"]
        url = container_env(c)["DATABASE_URL"]["value"]
        query = url.split(f"/{dbname}?", 1)[1]
        params = dict(p.split("=", 1) for p in query.split("&"))
        assert params["sslmode"] == want, url
        assert ("sslrootcert" in params) == ca, url


# A user name and passwords that would end a naively quoted JAAS value or add options to it.
TRICKY_SASL = [
    ("rooms", 'pa"ss; debug=true'),
    ('ro"o\\ms', 'back\\slash" x="y'),
    ("rooms", 'ends with \\'),
    ("rooms", "line\nbreak and \\u0041 and \\n"),
]


def _properties_value(text, key):
    """The value of key in a Java properties file, unescaped as java.util.Properties does."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith(key + "="):
            continue
        raw = line[len(key) + 1:]
        while len(raw) - len(raw.rstrip("\\")) % 2 == 1 and i + 1 < len(lines):
            i += 1
            raw = raw[:-1] + lines[i].lstrip()
        out, j = [], 0
        while j < len(raw):
            ch = raw[j]
            if ch == "\\" and j + 1 < len(raw):
                nxt = raw[j + 1]
                if nxt == "u":
                    out.append(chr(int(raw[j + 2:j + 6], 16)))
                    j += 6
                    continue
                out.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(nxt, nxt))
                j += 2
                continue
            out.append(ch)
            j += 1
        return "".join(out)
    raise AssertionError(f"{key} not in {text!r}")


def _jaas_options(value):
    """module, flag and options of one JAAS entry, with quoted strings read as Kafka's JaasConfig
    (java.io.StreamTokenizer) reads them."""
    tokens, j = [], 0
    while j < len(value):
        ch = value[j]
        if ch.isspace():
            j += 1
        elif ch == '"':
            out, j = [], j + 1
            while j < len(value) and value[j] != '"':
                if value[j] == "\n":
                    raise AssertionError(f"line break inside a quoted JAAS value: {value!r}")
                if value[j] == "\\":
                    j += 1
                    out.append({"n": "\n", "r": "\r", "t": "\t"}.get(value[j], value[j]))
                else:
                    out.append(value[j])
                j += 1
            assert j < len(value), f"unterminated quoted JAAS value: {value!r}"
            tokens.append(("str", "".join(out)))
            j += 1
        elif ch in "=;":
            tokens.append((ch, ch))
            j += 1
        else:
            k = j
            while k < len(value) and not value[k].isspace() and value[k] not in '=;"':
                k += 1
            tokens.append(("word", value[j:k]))
            j = k
    assert tokens[-1] == (";", ";") and [t for t, _ in tokens].count(";") == 1, tokens
    module, flag, rest = tokens[0][1], tokens[1][1], tokens[2:-1]
    options = {}
    assert len(rest) % 3 == 0, tokens
    for n in range(0, len(rest), 3):
        (_, name), eq, (_, val) = rest[n:n + 3]
        assert eq[0] == "=", tokens
        options[name] = val
    return module, flag, options


def _topic_job_properties(helm, tmp_path, env):
    """Runs the rendered topic Job's client-properties part with bash and env; the file's text."""
    values = tmp_path / "secure.yaml"
    values.write_text(yaml.safe_dump(SECURE_EXTERNAL_VALUES))
    r = helm.template(files=(str(values),))
    assert r.returncode == 0, r.stderr
    (c,) = r.get("Job", f"{RELEASE}-kafka-topics")["spec"]["template"]["spec"]["containers"]
    script = c["command"][-1]
    head = script[:script.index("topics() {")]
    out = tmp_path / "client.properties"
    head = head.replace("/tmp/client.pem", str(tmp_path / "client.pem"))
    head = head.replace("/tmp/client.properties", str(out))
    (tmp_path / "key").write_text("KEY\n")
    (tmp_path / "crt").write_text("CRT\n")
    run_env = {"PATH": os.environ["PATH"], "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
               "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SSL_CA_LOCATION": "/ca.crt",
               "KAFKA_SSL_KEY_LOCATION": str(tmp_path / "key"),
               "KAFKA_SSL_CERTIFICATE_LOCATION": str(tmp_path / "crt"), **env}
    proc = subprocess.run(["bash", "-ec", head], env=run_env, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    return out.read_text()


@pytest.mark.parametrize("username,password", TRICKY_SASL)
def test_topic_job_quotes_the_sasl_password_in_jaas(helm, tmp_path, username, password):
    """The Job's JAAS line carries the name and password exactly, whatever they hold: read back
    as Kafka reads it (properties file, then JAAS), it has the two options and no others."""
    text = _topic_job_properties(helm, tmp_path, {"KAFKA_SASL_USERNAME": username,
                                                  "KAFKA_SASL_PASSWORD": password})
    assert _properties_value(text, "security.protocol") == "SASL_SSL"
    assert _properties_value(text, "sasl.mechanism") == "SCRAM-SHA-512"
    assert _properties_value(text, "ssl.truststore.location") == "/ca.crt"
    jaas = _properties_value(text, "sasl.jaas.config")
    module, flag, options = _jaas_options(jaas)
    assert module == "org.apache.kafka.common.security.scram.ScramLoginModule"
    assert flag == "required"
    assert options == {"username": username, "password": password}


JAAS_CHECK_JAVA = """
import java.io.FileInputStream;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.common.config.types.Password;
import org.apache.kafka.common.security.JaasContext;

public class JaasCheck {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) { p.load(in); }
        JaasContext c = JaasContext.loadClientContext(
            Map.of("sasl.jaas.config", new Password(p.getProperty("sasl.jaas.config"))));
        var entries = c.configurationEntries();
        if (entries.size() != 1) throw new IllegalStateException("entries: " + entries.size());
        var options = new java.util.TreeMap<String, Object>(entries.get(0).getOptions());
        System.out.print(options.keySet() + "\\0" + options.get("username") + "\\0"
                         + options.get("password"));
    }
}
"""


def test_topic_job_jaas_line_as_kafka_reads_it(helm, tmp_path):
    """The same, read by Kafka's own classes (java.util.Properties and JaasContext from the
    jars in kafka/libs), when Java and the jars are here."""
    jars = sorted((ROOT / "kafka" / "libs").glob("kafka-clients-*.jar"))
    java = shutil.which("java")
    if not java or not jars:
        pytest.skip("needs java and kafka/libs/kafka-clients-*.jar")
    source = tmp_path / "JaasCheck.java"
    source.write_text(JAAS_CHECK_JAVA)
    for n, (username, password) in enumerate(TRICKY_SASL):
        case = tmp_path / str(n)
        case.mkdir()
        text = _topic_job_properties(helm, case, {"KAFKA_SASL_USERNAME": username,
                                                  "KAFKA_SASL_PASSWORD": password})
        (case / "client.properties").write_text(text)
        proc = subprocess.run([java, "-cp", str(jars[0].parent / "*"), str(source),
                               str(case / "client.properties")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split("\0") == ["[password, username]", username, password]


@pytest.mark.parametrize("sets,message", [
    ((("externalKafka.securityProtocol", "SASL_SSL"),), "apply to an external Kafka"),
    ((("kafka.enabled", "false"), ("externalKafka.brokers", "b:9092"),
      ("externalKafka.securityProtocol", "SASL_PLAINTEXT")),
     "externalKafka.sasl.mechanism, .username and .passwordSecret.name are required"),
    ((("kafka.enabled", "false"), ("externalKafka.brokers", "b:9092"),
      ("externalKafka.securityProtocol", "SSL"), ("externalKafka.sasl.mechanism", "PLAIN")),
     "needs securityProtocol SASL_PLAINTEXT or SASL_SSL"),
    ((("kafka.enabled", "false"), ("externalKafka.brokers", "b:9092"),
      ("externalKafka.securityProtocol", "TLS")), "securityProtocol"),
])
def test_kafka_security_settings_are_checked(helm, sets, message):
    r = helm.template(sets=sets)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


# --- autoscaling, disruption budgets, environments -----------------------------------------------

@pytest.mark.parametrize("variant", ["default", *ENVIRONMENTS])
def test_hpa_and_pdb_per_service(variants, variant):
    r = rendered(variants, variant)
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in r.kind("HorizontalPodAutoscaler")}
    pdbs = r.kind("PodDisruptionBudget")
    for component in SERVICES:
        dep = r.get("Deployment", svc_name(component))
        hpa = hpas[svc_name(component)]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert any(m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"])
        assert "replicas" not in dep["spec"], "the HPA owns the replica count"
        selector = dep["spec"]["selector"]["matchLabels"]
        matching = [p for p in pdbs if p["spec"]["selector"]["matchLabels"] == selector]
        assert len(matching) == 1, component
        assert matching[0]["apiVersion"] == "policy/v1"
        spec = matching[0]["spec"]
        # A budget that can never be satisfied would block node drains.
        if "minAvailable" in spec:
            assert spec["minAvailable"] < hpa["spec"]["minReplicas"]
        else:
            assert spec["maxUnavailable"] >= 1


def test_per_service_settings_override_the_defaults(helm):
    r = helm.template(sets=(("services.reservation.autoscaling.maxReplicas", 7),
                            ("services.room.resources.limits.memory", "300Mi")))
    assert r.returncode == 0, r.stderr
    maxima = {h["metadata"]["name"]: h["spec"]["maxReplicas"]
              for h in r.kind("HorizontalPodAutoscaler")}
    assert maxima == {svc_name("user-service"): 4, svc_name("room-service"): 4,
                      svc_name("reservation-service"): 7}
    limits = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["resources"]
              ["limits"] for d in r.kind("Deployment")}
    assert limits[svc_name("room-service")] == {"cpu": "500m", "memory": "300Mi"}
    assert limits[svc_name("user-service")] == {"cpu": "500m", "memory": "256Mi"}


def test_environments_differ(variants):
    facts = {}
    for env in ENVIRONMENTS:
        r = rendered(variants, env)
        hpa = r.get("HorizontalPodAutoscaler", svc_name("reservation-service"))["spec"]
        (c,) = r.get("Deployment", svc_name("reservation-service"))["spec"]["template"]["spec"][
            "containers"]
        pg = r.get("StatefulSet", f"{RELEASE}-postgresql")["spec"]["volumeClaimTemplates"][0]
        kafka = r.get("StatefulSet", f"{RELEASE}-kafka")
        facts[env] = {
            "log_level": r.get("ConfigMap", f"{RELEASE}-config")["data"]["LOG_LEVEL"],
            "hpa": (hpa["minReplicas"], hpa["maxReplicas"]),
            "resources": json.dumps(c["resources"], sort_keys=True),
            "pg_size": pg["spec"]["resources"]["requests"]["storage"],
            "kafka_size": kafka["spec"]["volumeClaimTemplates"][0]["spec"]["resources"][
                "requests"]["storage"],
        }
    dev, stg, prod = (facts[e] for e in ENVIRONMENTS)
    assert (dev["log_level"], stg["log_level"], prod["log_level"]) == ("debug", "info", "warn")
    assert dev["hpa"] < stg["hpa"] < prod["hpa"]
    assert len({f["pg_size"] for f in facts.values()}) == 3
    assert len({f["kafka_size"] for f in facts.values()}) == 3
    assert dev["resources"] != prod["resources"]


# --- monitoring ----------------------------------------------------------------------------------

def test_monitoring_objects_only_when_enabled(variants):
    for variant in ("default", *ENVIRONMENTS):
        kinds = {d["kind"] for d in rendered(variants, variant).docs}
        assert not kinds & CRD_KINDS
    r = rendered(variants, "monitoring")
    (sm,) = r.kind("ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    (ep,) = sm["spec"]["endpoints"]
    assert ep["port"] == "http" and ep["path"] == "/metrics"
    # The ServiceMonitor selects exactly the three services.
    selected = []
    for svc in r.kind("Service"):
        labels = svc["metadata"]["labels"]
        if all(labels.get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items()) and \
                all(labels.get(e["key"]) in e["values"]
                    for e in sm["spec"]["selector"]["matchExpressions"]):
            selected.append(svc["metadata"]["name"])
    assert sorted(selected) == sorted(svc_name(c) for c in SERVICES)
    assert all(p["name"] == "http" for n in selected for p in r.get("Service", n)["spec"]["ports"])


def _balanced(expr):
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    for ch in re.sub(r'"[^"]*"', '""', expr):
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack


def test_prometheus_rules(variants):
    r = rendered(variants, "monitoring")
    (rule,) = r.kind("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    rules = [x for g in rule["spec"]["groups"] for x in g["rules"]]
    by_name = {x["alert"]: x for x in rules}
    assert len(by_name) == len(rules)
    exprs = " ".join(x["expr"] for x in rules)
    for metric in ("http_requests_total", "http_request_duration_seconds_bucket",
                   "outbox_backlog", "kafka_dlq_messages_total", "kafka_messages_consumed_total",
                   "kube_deployment_status_replicas_ready", "db_pool_timeouts_total",
                   "kube_pod_container_status_restarts_total",
                   "outbox_oldest_pending_age_seconds", "delivery_oldest_pending_age_seconds",
                   "delivery_failed_total"):
        assert metric in exprs, metric
    assert 'status=~"5.."' in exprs and "histogram_quantile(0.99" in exprs
    for x in rules:
        assert _balanced(x["expr"]), x["alert"]
        assert x["labels"]["severity"] in ("warning", "critical")
        assert x["annotations"]["summary"]
        assert "{{" not in x["expr"]
        # Prometheus templates survive Helm: {{ $labels.x }} is left for Prometheus.
        for text in x["annotations"].values():
            assert text.count("{{") == text.count("}}")
    assert f'job=~"{RELEASE}-user-service|' in exprs and f'namespace="{NAMESPACE}"' in exprs


def test_grafana_dashboard(variants):
    r = rendered(variants, "monitoring")
    (cm,) = [c for c in r.kind("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = cm["data"].values()
    dash = json.loads(text)
    assert dash["title"] and dash["uid"]
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    joined = " ".join(exprs)
    for metric in METRICS:
        assert metric in joined, metric
    assert "histogram_quantile(0.50" in joined and "histogram_quantile(0.99" in joined
    assert all(_balanced(e) for e in exprs)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


# --- the PostgreSQL init script against a real server --------------------------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not (PG_BIN / "initdb").exists() or os.geteuid() != 0
                    or shutil.which("runuser") is None,
                    reason="needs PostgreSQL 15 server binaries and root (to run as postgres)")
def test_postgresql_init_script_creates_databases(variants):
    cm = rendered(variants, "default").get("ConfigMap", f"{RELEASE}-postgresql-init")
    (script,) = cm["data"].values()
    base = Path(tempfile.mkdtemp(prefix="mr-pginit-"))
    port = _free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]
    try:
        os.chmod(base, 0o755)
        shutil.chown(base, "postgres", "postgres")
        (base / "init.sh").write_text(script)
        os.chmod(base / "init.sh", 0o755)
        data = base / "data"
        subprocess.run(as_pg + [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120, cwd=base)
        subprocess.run(as_pg + [str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-t", "60",
                                "-l", str(base / "log"), "-o",
                                f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, timeout=120, cwd=base)
        env = {"PATH": f"{PG_BIN}:/usr/bin:/bin", "PGHOST": str(base), "PGPORT": str(port),
               "POSTGRES_USER": "postgres", "APP_DB_USER": "meeting_rooms",
               "APP_DB_PASSWORD": "test-only-app-db-password",
               "APP_DATABASES": "user_db room_db reservation_db",
               "RESERVATION_DB": "reservation_db"}
        env_args = [f"{k}={v}" for k, v in env.items()]
        for _ in range(2):  # a second run changes nothing and does not fail
            proc = subprocess.run(as_pg + ["env", "-i", *env_args, str(base / "init.sh")],
                                  capture_output=True, text=True, timeout=60, cwd=base)
            assert proc.returncode == 0, proc.stdout + proc.stderr

        def psql(sql, db="postgres", user="postgres", host=str(base), password=None):
            e = dict(env, PGHOST=host)
            if password:
                e["PGPASSWORD"] = password
            proc = subprocess.run(as_pg + ["env", "-i", *(f"{k}={v}" for k, v in e.items()),
                                           "psql", "-XAtq", "-U", user, "-d", db, "-c", sql],
                                  capture_output=True, text=True, timeout=60, cwd=base)
            assert proc.returncode == 0, proc.stderr
            return proc.stdout.strip()

        owners = psql("SELECT datname || ':' || pg_get_userbyid(datdba) FROM pg_database "
                      "WHERE datname LIKE '%\\_db' ORDER BY datname")
        assert owners.split() == ["reservation_db:meeting_rooms", "room_db:meeting_rooms",
                                  "user_db:meeting_rooms"]
        assert psql("SELECT extname FROM pg_extension WHERE extname = 'btree_gist'",
                    db="reservation_db") == "btree_gist"
        # The application role logs in over TCP with its password and owns its schema work.
        assert psql("CREATE TABLE t (x int); SELECT current_user", db="room_db",
                    user="meeting_rooms", host="127.0.0.1",
                    password="test-only-app-db-password") == "meeting_rooms"
    finally:
        subprocess.run(as_pg + [str(PG_BIN / "pg_ctl"), "-D", str(base / "data"), "-m", "immediate",
                                "stop"], capture_output=True, timeout=60, cwd=base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("key,value", [
    ("config.TEST_CLOCK", "true"),
    ("serviceDefaults.extraEnv[0].name", "TEST_CLOCK"),
    ("services.reservation.extraEnv[0].name", "TEST_CLOCK"),
])
def test_test_clock_is_refused(helm, key, value):
    """TEST_CLOCK=true lets whoever reaches a service's port move its business clock
    (docs/operations.md#test-clock): the values schema refuses it however it is given."""
    sets = ((key, value),)
    if "extraEnv" in key:
        sets += ((key.replace(".name", ".value"), "true"),)
    r = helm.template(sets=sets)
    assert r.returncode != 0
    assert "values don't meet the specifications of the schema" in r.stderr, r.stderr


def test_other_extra_env_is_allowed(helm):
    r = helm.template(sets=(("services.reservation.extraEnv[0].name", "EXTRA_SETTING"),
                            ("services.reservation.extraEnv[0].value", "1")))
    assert r.returncode == 0, r.stderr
    env = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0].get("env", [])
           for d in r.kind("Deployment")}
    assert {"name": "EXTRA_SETTING", "value": "1"} in env[svc_name("reservation-service")], env
