"""Offline checks of the chart's traffic rules: the NetworkPolicies (evaluated here the way a
network plugin would, over every pair of pods and ports that matters), the gateway's client
address and /auth/* limit settings, and the rollout drain (preStop sleep, DRAIN_DELAY_MS, grace
periods).  Renders with the fixtures of test_helm.py."""

import ipaddress
import os
import re
import subprocess

import pytest

from test_helm import (  # noqa: F401 - fixtures below
    NAMESPACE,
    RELEASE,
    ROOT,
    SERVICES,
    env_file,
    external_values_file,
    helm,
    rendered,
    svc_name,
    variants,
)

NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
NS_NAME = "kubernetes.io/metadata.name"
TCP, UDP = "TCP", "UDP"
PRIVATE_V4 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
INGRESS_NS = ("networkPolicy.gatewayFrom[0].namespaceSelector.matchLabels."
              "kubernetes\\.io/metadata\\.name")


class Literal:
    """A value helm.template passes with --set as written (not --set-string): null removes a key."""

    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text


NULL = Literal("null")


# --- a small NetworkPolicy evaluator -------------------------------------------------------------

class Pod:
    """A pod (namespace and labels) or, with namespace None, an address outside the cluster."""

    def __init__(self, name, namespace, labels):
        self.name, self.namespace, self.labels = name, namespace, labels


def selects(selector, labels):
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        present = e["key"] in labels
        value = labels.get(e["key"])
        ok = {"In": present and value in e.get("values", []),
              "NotIn": not present or value not in e.get("values", []),
              "Exists": present, "DoesNotExist": not present}[e["operator"]]
        if not ok:
            return False
    return True


def peer_matches(peer, pod):
    if "ipBlock" in peer:
        return pod.namespace is None  # the chart uses ipBlock only for outside addresses
    if pod.namespace is None:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], {NS_NAME: pod.namespace}):
            return False
    elif pod.namespace != NAMESPACE:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], pod.labels)


def rule_allows(rule, side, pod, port, proto):
    peers = rule.get(side)
    if peers and not any(peer_matches(p, pod) for p in peers):
        return False
    ports = rule.get("ports")
    if not ports:
        return True
    for p in ports:
        assert isinstance(p["port"], int), f"the chart uses numeric ports: {p}"
        if p["port"] == port and p.get("protocol", TCP) == proto:
            return True
    return False


def applying(policies, pod, kind):
    if pod.namespace != NAMESPACE:
        return []
    return [p for p in policies if kind in p["spec"]["policyTypes"]
            and selects(p["spec"]["podSelector"], pod.labels)]


def allowed(policies, src, dst, port, proto=TCP):
    """Both ends must allow: src's egress (when a policy selects it) and dst's ingress."""
    egress = applying(policies, src, "Egress")
    if egress and not any(rule_allows(r, "to", dst, port, proto)
                          for p in egress for r in p["spec"].get("egress") or []):
        return False
    ingress = applying(policies, dst, "Ingress")
    if ingress and not any(rule_allows(r, "from", src, port, proto)
                           for p in ingress for r in p["spec"].get("ingress") or []):
        return False
    return True


def release_pods(r):
    """One pod per workload (Deployments, StatefulSets, the topic Job), named by component."""
    pods = {}
    for d in r.docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            labels = d["spec"]["template"]["metadata"]["labels"]
            pods[labels[COMPONENT]] = Pod(labels[COMPONENT], NAMESPACE, labels)
    return pods


OUTSIDERS = {
    # a pod of someone else in the release's namespace
    "stranger": Pod("stranger", NAMESPACE, {"app": "debug-shell"}),
    # a pod that copies the release's labels but is none of its components
    "lookalike": Pod("lookalike", NAMESPACE, {NAME: "meeting-rooms", INSTANCE: RELEASE,
                                              COMPONENT: "debug"}),
    "prometheus": Pod("prometheus", "monitoring", {NAME: "prometheus"}),
    # the same labels in the wrong namespace
    "foreign": Pod("foreign", "elsewhere", {NAME: "prometheus"}),
    "internet": Pod("internet", None, {}),
}
PORTS = [(p, TCP) for p, _ in SERVICES.values()] + [
    (8080, TCP), (5432, TCP), (6432, TCP), (9092, TCP), (9093, TCP), (443, TCP), (80, TCP),
    (53, UDP), (53, TCP)]


def reachability(r):
    """Every (source, destination, port, protocol) allowed where the destination is a pod of the
    release, the lookalike, or an outside address."""
    pods = release_pods(r)
    policies = r.kind("NetworkPolicy")
    everyone = {**pods, **OUTSIDERS}
    dests = {**pods, "lookalike": OUTSIDERS["lookalike"], "internet": OUTSIDERS["internet"]}
    out = set()
    for s in everyone.values():
        for d in dests.values():
            if s.namespace is None and d.namespace is None:
                continue
            if s.name not in pods and d.name not in pods and d.name != "lookalike":
                continue  # between outsiders: none of the chart's business
            for port, proto in PORTS:
                if allowed(policies, s, d, port, proto):
                    out.add((s.name, d.name, port, proto))
    return out, pods


def expected_reachability(pods, db_port=None, kafka_ports=()):
    """What the chart promises.  db_port/kafka_ports: the external ones (bundled when None/())."""
    exp = set()
    # Anyone may reach the gateway, except a pod with the release's labels (denied by default).
    for src in ("stranger", "prometheus", "foreign", "internet"):
        exp.add((src, "gateway", 8080, TCP))
    for component, (port, _) in SERVICES.items():
        exp.add(("gateway", component, port, TCP))
        exp.add(("prometheus", component, port, TCP))
        if db_port is None:
            exp.add((component, "postgresql", 5432, TCP))
        else:
            exp.add((component, "internet", db_port, TCP))
        if not kafka_ports:
            exp.add((component, "kafka", 9092, TCP))
        for p in kafka_ports:
            exp.add((component, "internet", p, TCP))
    exp.add(("user-service", "internet", 443, TCP))
    exp.add(("reservation-service", "internet", 443, TCP))  # webhook receivers
    if "kafka" in pods:
        exp |= {("kafka-topics", "kafka", 9092, TCP), ("kafka", "kafka", 9092, TCP),
                ("kafka", "kafka", 9093, TCP)}
    for p in kafka_ports:
        exp.add(("kafka-topics", "internet", p, TCP))
    for name in pods:
        exp |= {(name, "internet", 53, UDP), (name, "internet", 53, TCP)}
    return exp


# --- NetworkPolicies -----------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["default", "development", "production"])
def test_only_the_intended_paths_are_open(variants, variant):
    out, pods = reachability(rendered(variants, variant))
    assert set(pods) == {*SERVICES, "gateway", "postgresql", "kafka", "kafka-topics"}
    exp = expected_reachability(pods)
    assert out - exp == set(), "open but not intended"
    assert exp - out == set(), "intended but closed"


def test_external_dependencies_are_reached_on_their_ports(variants):
    out, pods = reachability(rendered(variants, "external"))
    assert set(pods) == {*SERVICES, "gateway", "kafka-topics"}
    exp = expected_reachability(pods, db_port=6432, kafka_ports=(9092,))
    assert out - exp == set(), "open but not intended"
    assert exp - out == set(), "intended but closed"


def test_every_workload_is_covered_and_denied_by_default(variants):
    for variant in ("default", "production", "external", "monitoring"):
        r = rendered(variants, variant)
        policies = {p["metadata"]["name"]: p for p in r.kind("NetworkPolicy")}
        deny = policies[f"{RELEASE}-default-deny"]["spec"]
        assert deny["podSelector"] == {"matchLabels": {NAME: "meeting-rooms", INSTANCE: RELEASE}}
        assert sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
        assert "ingress" not in deny and "egress" not in deny
        dns = policies[f"{RELEASE}-dns"]["spec"]
        assert dns["podSelector"] == deny["podSelector"] and dns["policyTypes"] == ["Egress"]
        assert dns["egress"] == [{"ports": [{"port": 53, "protocol": UDP},
                                            {"port": 53, "protocol": TCP}]}]
        for name, pod in release_pods(r).items():
            assert selects(deny["podSelector"], pod.labels), (variant, name)
            own = [n for n, p in policies.items()
                   if p["spec"]["podSelector"].get("matchLabels", {}).get(COMPONENT) == name]
            assert own == [f"{RELEASE}-{name}"], (variant, name, own)
            assert sorted(policies[own[0]]["spec"]["policyTypes"]) == ["Egress", "Ingress"]
        for p in policies.values():
            assert p["apiVersion"] == "networking.k8s.io/v1"
            assert p["metadata"]["labels"][INSTANCE] == RELEASE


def test_policy_selectors_match_the_pods(variants):
    r = rendered(variants, "default")
    pod = {n: p.labels for n, p in release_pods(r).items()}
    for component in SERVICES:
        spec = r.get("NetworkPolicy", f"{RELEASE}-{component}")["spec"]
        (dep_labels,) = [d["spec"]["selector"]["matchLabels"] for d in r.kind("Deployment")
                         if d["metadata"]["name"] == svc_name(component)]
        assert spec["podSelector"]["matchLabels"] == dep_labels
        from_gateway, from_metrics = spec["ingress"]
        (peer,) = from_gateway["from"]
        assert selects(peer["podSelector"], pod["gateway"]) and "namespaceSelector" not in peer
        assert from_metrics["from"] == [{
            "namespaceSelector": {"matchLabels": {NS_NAME: "monitoring"}},
            "podSelector": {"matchLabels": {NAME: "prometheus"}}}]


def test_policy_settings_are_used(helm):
    ingress_ns = {"namespaceSelector": {"matchLabels": {NS_NAME: "ingress-nginx"}}}
    kube_dns = {"namespaceSelector": {"matchLabels": {NS_NAME: "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    google = {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}
    r = helm.template(sets=(
        ("networkPolicy.gatewayFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name",
         "ingress-nginx"),
        ("networkPolicy.metricsFrom[0].podSelector.matchLabels.app", "vmagent"),
        ("networkPolicy.dnsTo[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name",
         "kube-system"),
        ("networkPolicy.dnsTo[0].podSelector.matchLabels.k8s-app", "kube-dns"),
        ("networkPolicy.oidcTo[0].ipBlock.cidr", "0.0.0.0/0"),
        ("networkPolicy.oidcTo[0].ipBlock.except[0]", "10.0.0.0/8"),
    ))
    assert r.returncode == 0, r.stderr
    gw = r.get("NetworkPolicy", f"{RELEASE}-gateway")["spec"]
    assert gw["ingress"] == [{"ports": [{"port": 8080, "protocol": TCP}], "from": [ingress_ns]}]
    dns = r.get("NetworkPolicy", f"{RELEASE}-dns")["spec"]
    assert dns["egress"][0]["to"] == [kube_dns]
    user = r.get("NetworkPolicy", f"{RELEASE}-user-service")["spec"]
    assert user["ingress"][1]["from"] == [{"podSelector": {"matchLabels": {"app": "vmagent"}}}]
    assert {"ports": [{"port": 443, "protocol": TCP}], "to": [google]} in user["egress"]
    room = r.get("NetworkPolicy", f"{RELEASE}-room-service")["spec"]
    assert not any(p["port"] == 443 for rule in room["egress"] for p in rule["ports"])
    # No metrics peers: only the gateway reaches the services.
    r = helm.template(sets=(("networkPolicy.metricsFrom", NULL),))
    assert r.returncode == 0, r.stderr
    assert len(r.get("NetworkPolicy", f"{RELEASE}-room-service")["spec"]["ingress"]) == 1


def test_reservation_service_may_reach_webhook_receivers(helm, tmp_path):
    r = helm.template()
    assert r.returncode == 0, r.stderr
    res = r.get("NetworkPolicy", f"{RELEASE}-reservation-service")["spec"]["egress"]
    (hooks,) = [e for e in res if e["ports"] == [{"port": 443, "protocol": TCP}]]
    v4, v6 = hooks["to"]
    assert v4["ipBlock"]["cidr"] == "0.0.0.0/0"
    for private in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                    "100.64.0.0/10", "127.0.0.0/8"):
        assert private in v4["ipBlock"]["except"], private
    assert v6["ipBlock"] == {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10"]}
    # Only reservation-service: room-service has no 443 at all, user-service its OIDC rule.
    room = r.get("NetworkPolicy", f"{RELEASE}-room-service")["spec"]["egress"]
    assert not any(p["port"] == 443 for rule in room for p in rule["ports"])
    # The WEBHOOK_* settings reach the service (the shared ConfigMap).
    data = r.get("ConfigMap", f"{RELEASE}-config")["data"]
    assert {k: data[k] for k in data if k.startswith("WEBHOOK_")} == {
        "WEBHOOK_RETRY_HOURS": "24", "WEBHOOK_RETRY_BASE_MS": "30000",
        "WEBHOOK_TIMEOUT_MS": "10000", "WEBHOOK_ALLOW_PRIVATE": "false",
        "WEBHOOK_ALLOW_LOOPBACK": "false"}
    # Narrowed to one receiver on two ports; or turned off.
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text("networkPolicy:\n  reservationEgress:\n    ports: [443, 8443]\n"
                      "    to: [{ipBlock: {cidr: 203.0.113.7/32}}]\n")
    r = helm.template((str(narrow),))
    assert r.returncode == 0, r.stderr
    res = r.get("NetworkPolicy", f"{RELEASE}-reservation-service")["spec"]["egress"]
    assert {"ports": [{"port": 443, "protocol": TCP}, {"port": 8443, "protocol": TCP}],
            "to": [{"ipBlock": {"cidr": "203.0.113.7/32"}}]} in res
    off = tmp_path / "off.yaml"
    off.write_text("networkPolicy:\n  reservationEgress:\n    ports: []\n")
    r = helm.template((str(off),))
    assert r.returncode == 0, r.stderr
    res = r.get("NetworkPolicy", f"{RELEASE}-reservation-service")["spec"]["egress"]
    assert not any(p["port"] == 443 for rule in res for p in rule["ports"])


def test_smtp_egress_only_with_mail_on(helm, variants):
    """reservation-service reaches the SMTP server (networkPolicy.smtpEgress) only when
    config.SMTP_URL is set; nothing else gets the rule."""
    def smtp_rules(r, name):
        return [e for e in r.get("NetworkPolicy", f"{RELEASE}-{name}")["spec"]["egress"]
                if {p["port"] for p in e["ports"]} & {25, 465, 587}]
    off = rendered(variants, "default")
    assert all(smtp_rules(off, name) == [] for name in SERVICES)
    r = helm.template(sets=(("config.SMTP_URL", "smtp://mail.example.com:587"),
                            ("config.SMTP_FROM", "rooms@example.com"),
                            ("networkPolicy.smtpEgress.ports[0]", Literal("587")),
                            ("networkPolicy.smtpEgress.to[0].ipBlock.cidr", "192.0.2.0/24")))
    assert r.returncode == 0, r.stderr
    assert smtp_rules(r, "reservation-service") == [{
        "ports": [{"port": 587, "protocol": TCP}], "to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]}]
    assert smtp_rules(r, "room-service") == [] and smtp_rules(r, "user-service") == []
    r = helm.template(sets=(("config.SMTP_URL", "smtps://mail.example.com"),))
    assert r.returncode == 0, r.stderr
    assert smtp_rules(r, "reservation-service") == [{
        "ports": [{"port": 587, "protocol": TCP}, {"port": 465, "protocol": TCP}]}]


@pytest.mark.parametrize("url, port", [
    ("smtp://relay.example.com", 25),
    ("smtp://relay.example.com:2525", 2525),
    ("smtp://[2001:db8::25]:2526", 2526),
    ("SMTPS://relay.example.com", 465),
    ("smtp://relay.example.com:587/rooms.example.com", 587),
])
def test_smtp_egress_follows_the_url_port(helm, url, port):
    """The port of config.SMTP_URL is open whatever networkPolicy.smtpEgress.ports lists
    (review 14c L6: a relay on 25 or 2525 otherwise timed out for MAIL_RETRY_HOURS), once."""
    r = helm.template(sets=(("config.SMTP_URL", url), ("config.SMTP_FROM", "rooms@example.com"),
                            ("networkPolicy.smtpEgress.ports[0]", Literal("587"))))
    assert r.returncode == 0, r.stderr
    egress = r.get("NetworkPolicy", f"{RELEASE}-reservation-service")["spec"]["egress"]
    smtp = [e for e in egress if {p["port"] for p in e["ports"]} & {587}]
    want = [587] if port == 587 else [587, port]
    assert [[p["port"] for p in e["ports"]] for e in smtp] == [want], egress


def test_external_targets_can_be_narrowed(helm, external_values_file):
    brokers = "k1.internal:9094\\,k2.internal:9094\\,k3.internal"
    r = helm.template((env_file("production"), external_values_file),
                      (("networkPolicy.externalTo[0].ipBlock.cidr", "10.20.0.0/16"),
                       ("externalKafka.brokers", brokers)))
    assert r.returncode == 0, r.stderr
    for name in (*SERVICES, "kafka-topics"):
        egress = r.get("NetworkPolicy", f"{RELEASE}-{name}")["spec"]["egress"]
        kafka = [e for e in egress if {p["port"] for p in e["ports"]} == {9094, 9092}]
        assert len(kafka) == 1, (name, egress)  # one rule, a port without :port is 9092
        assert kafka[0]["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
    db = [e for e in r.get("NetworkPolicy", f"{RELEASE}-room-service")["spec"]["egress"]
          if e["ports"] == [{"port": 6432, "protocol": TCP}]]
    assert db and db[0]["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]


def test_network_policies_can_be_disabled(helm):
    # user-service's X-Real-IP rule (TRUSTED_GATEWAYS) relies on them: it goes too.
    r = helm.template(sets=(("networkPolicy.enabled", "false"), ("config.TRUSTED_GATEWAYS", "")))
    assert r.returncode == 0, r.stderr
    assert r.kind("NetworkPolicy") == []
    assert r.get("ConfigMap", f"{RELEASE}-config")["data"].get("TRUSTED_GATEWAYS", "") == ""


# --- the gateway: client address and the /auth/* limit -------------------------------------------

def gateway_conf(r):
    return r.get("ConfigMap", f"{RELEASE}-gateway")["data"]["gateway.conf"]


def test_gateway_client_address_and_auth_limit_defaults(variants):
    r = rendered(variants, "default")
    conf = gateway_conf(r)
    # No proxy is trusted by default: the peer is the client, X-Forwarded-For changes nothing.
    assert not re.search(r"^\s*set_real_ip_from", conf, re.M)
    assert "\nreal_ip_header X-Forwarded-For;\nreal_ip_recursive on;\n" in conf
    # One address reaches the services, never the client's own list.
    assert "proxy_set_header X-Real-IP $remote_addr;" in conf
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert "$proxy_add_x_forwarded_for" not in conf
    assert "limit_req_zone $auth_limit_key zone=auth:10m rate=30r/m;" in conf
    assert re.search(r"\nmap \$remote_addr \$auth_limit_key \{\n.*?\n"
                     r"\s+default\s+\$binary_remote_addr;\n\}\n", conf, re.S)
    # Rejections are logged below the error log's level: nginx's line quotes the request line,
    # and a refused OAuth callback's code and state are still unused.
    assert "limit_req_log_level info;" in conf
    main = r.get("ConfigMap", f"{RELEASE}-gateway")["data"]["nginx.conf"]
    assert "error_log /dev/stderr warn;" in main
    auth = re.search(r"location ~ \^/auth\(/\|\$\) \{(.*?)\}", conf, re.S).group(1)
    assert "limit_req zone=auth burst=30 nodelay;" in auth
    # Only /auth/*: the sign-in paths, and refresh and logout in a zone of their own.
    assert conf.count("limit_req zone=") == 2
    assert "limit_req_zone $auth_limit_key zone=refresh:10m rate=600r/m;" in conf
    assert "limit_req_status 429;" in conf and "error_page 429 @rate_limited;" in conf
    assert retry_after(conf) == {"refresh": "1", "default": "2"}
    # GET/HEAD may be passed on once more (each server of the group at most once); other methods
    # go to single-server groups, PUT and DELETE through @once, which never passes one on.
    assert "proxy_next_upstream error timeout;" in conf and "non_idempotent" not in conf
    assert "proxy_next_upstream_tries 0;" in conf
    for svc in ("user", "room", "reservation"):
        retry = re.search(rf"upstream {svc}_retry \{{(.*?)\}}", conf, re.S).group(1)
        once = re.search(rf"upstream {svc}_once \{{(.*?)\}}", conf, re.S).group(1)
        assert retry.count("server ") == 2 and once.count("server ") == 1
        assert f"\n    server {RELEASE}-{svc}-service:" in once
    once = re.search(r"\n    location @once \{(.*?)\}", conf, re.S).group(1)
    assert "proxy_next_upstream off;" in once and "proxy_pass http://$once_upstream;" in once
    assert re.search(r"map \$request_method \$retry_group \{\s*GET retry;\s*HEAD retry;\s*"
                     r"default once;\s*\}", conf)


def test_gateway_client_address_and_auth_limit_settings(helm):
    r = helm.template(sets=(("gateway.trustedProxies[0]", "10.42.0.0/16"),
                            ("gateway.trustedProxies[1]", "fd00:42::/64"),
                            (INGRESS_NS, "ingress-nginx"),
                            ("gateway.authRateLimit.perMinute", 120),
                            ("gateway.authRateLimit.burst", 5)))
    assert r.returncode == 0, r.stderr
    conf = gateway_conf(r)
    assert re.findall(r"^set_real_ip_from (\S+);$", conf, re.M) == ["10.42.0.0/16",
                                                                      "fd00:42::/64"]
    assert "zone=auth:10m rate=120r/m;" in conf and "zone=auth burst=5 nodelay;" in conf
    assert "add_header Retry-After $retry_after always;" in conf
    assert "retry in $retry_after s" in conf
    assert retry_after(conf) == {"refresh": "1", "default": "1"}
    # The refresh limit's defaults (600 a minute, burst 600), on its own paths.
    assert "zone=refresh:10m rate=600r/m;" in conf and "zone=refresh burst=600 nodelay;" in conf
    r = helm.template(sets=(("gateway.trustedProxies", NULL),
                            ("gateway.authRateLimit.perMinute", 7),
                            ("gateway.refreshRateLimit.perMinute", 25),
                            ("gateway.refreshRateLimit.burst", 9)))
    assert r.returncode == 0, r.stderr
    conf = gateway_conf(r)
    assert not re.search(r"^set_real_ip_from", conf, re.M)
    # ceil(60 / 7) and ceil(60 / 25)
    assert retry_after(conf) == {"refresh": "3", "default": "9"}
    assert "zone=refresh:10m rate=25r/m;" in conf and "zone=refresh burst=9 nodelay;" in conf
    refresh = re.search(r"location ~ \^/auth/\(refresh\|logout\)/\?\$ \{(.*?)\}", conf, re.S)
    sign_in = re.search(r"location ~ \^/auth\(/\|\$\) \{(.*?)\}", conf, re.S)
    assert "zone=refresh " in refresh.group(1) and "zone=auth " in sign_in.group(1)
    # nginx takes the first regular expression that matches: the refresh paths come first.
    assert refresh.start() < sign_in.start()


@pytest.mark.parametrize("zone", ["authRateLimit", "refreshRateLimit"])
def test_a_burst_of_0_is_refused(helm, zone):
    """nginx refuses `burst=0` ("invalid burst value"): the chart refuses it before every
    gateway pod would crash-loop on it (review 16c L4)."""
    r = helm.template(sets=((f"gateway.{zone}.burst", 0),))
    assert r.returncode != 0
    assert f"gateway.{zone}.burst: Must be greater than or equal to 1" in r.stderr, r.stderr
    r = helm.template(sets=((f"gateway.{zone}.burst", 1),))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("variable", ["GATEWAY_AUTH_BURST", "GATEWAY_REFRESH_BURST"])
def test_nginx_sh_refuses_a_burst_of_0(tmp_path, variable):
    """The same for make run and the tests' gateway (scripts/nginx.sh), before anything is
    started."""
    out = subprocess.run([str(ROOT / "scripts" / "nginx.sh"), "start", str(tmp_path / "gw"),
                          "1", "2", "3", "4"], env={**os.environ, variable: "0"},
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert f"bad {variable}: 0" in out.stderr, out.stderr
    assert not (tmp_path / "gw").exists()


def retry_after(conf):
    """The Retry-After of a 429 (map $uri $retry_after): on the refresh paths and elsewhere."""
    body = re.search(r"map \$uri \$retry_after \{(.*?)\}", conf, re.S).group(1)
    pairs = dict(line.split() for line in body.strip().splitlines())
    return {"refresh": pairs['"~^/auth/(refresh|logout)/?$"'].rstrip(";"),
            "default": pairs["default"].rstrip(";")}


@pytest.mark.parametrize("variant", ["default", "development", "production"])
def test_user_service_believes_x_real_ip_from_the_gateways_only(variants, variant):
    """TRUSTED_GATEWAYS (user-service): the gateway pods' addresses are not fixed, so the chart
    names the pod network; that is safe because within it only the gateway (and the metrics
    scrapers) may connect to user-service.  The removed TRUST_FORWARDED_FOR, which the service
    now refuses, is not set."""
    r = rendered(variants, variant)
    data = r.get("ConfigMap", f"{RELEASE}-config")["data"]
    assert "TRUST_FORWARDED_FOR" not in data
    nets = [ipaddress.ip_network(item.strip()) for item in data["TRUSTED_GATEWAYS"].split(",")]
    assert nets == [ipaddress.ip_network(n) for n in PRIVATE_V4]
    out, _ = reachability(r)
    port = SERVICES["user-service"][0]
    assert {src for src, dst, p, _ in out if dst == "user-service" and p == port} == {
        "gateway", "prometheus"}


# Combinations that would let a client choose its rate-limit bucket (review M1): a trusted
# proxy's X-Forwarded-For is believed, so only the proxies may reach the gateway; user-service's
# X-Real-IP rule needs the policies that keep everyone but the gateway off it.
@pytest.mark.parametrize("sets,message", [
    ((("gateway.trustedProxies[0]", "10.0.0.0/8"),),
     "gateway.trustedProxies needs networkPolicy.gatewayFrom"),
    ((("gateway.trustedProxies[0]", "10.0.0.0/8"), (INGRESS_NS, "ingress-nginx"),
      ("networkPolicy.enabled", "false"), ("config.TRUSTED_GATEWAYS", "")),
     "gateway.trustedProxies needs networkPolicy.enabled=true"),
    ((("networkPolicy.enabled", "false"),), "config.TRUSTED_GATEWAYS needs networkPolicy"),
    ((("config.TRUST_FORWARDED_FOR", "true"),), "config.TRUST_FORWARDED_FOR is no longer"),
    ((("serviceDefaults.terminationDrainSeconds", 601),
      ("serviceDefaults.terminationGracePeriodSeconds", 1300)), "terminationDrainSeconds"),
    ((("services.user.terminationDrainSeconds", 601),
      ("services.user.terminationGracePeriodSeconds", 1300)),
     "services.user: terminationDrainSeconds (601) must be at most 600"),
])
def test_unsafe_client_address_settings_are_refused(helm, sets, message):
    r = helm.template(sets=sets)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


def test_trusted_proxies_with_the_policies_that_make_them_safe(helm):
    r = helm.template(sets=(("gateway.trustedProxies[0]", "10.244.0.0/16"),
                            (INGRESS_NS, "ingress-nginx"),
                            ("config.TRUST_FORWARDED_FOR", "false")))
    assert r.returncode == 0, r.stderr
    assert re.findall(r"^set_real_ip_from (\S+);$", gateway_conf(r), re.M) == ["10.244.0.0/16"]
    # Only the Ingress controller's namespace reaches the gateway.
    policies, gateway = r.kind("NetworkPolicy"), release_pods(r)["gateway"]
    ingress = Pod("ingress", "ingress-nginx", {NAME: "ingress-nginx"})
    assert allowed(policies, ingress, gateway, 8080)
    for other in OUTSIDERS.values():
        assert not allowed(policies, other, gateway, 8080), other.name


@pytest.mark.parametrize("key,value,message", [
    ("gateway.trustedProxies[0]", "ingress.example.com", "gateway.trustedProxies.0"),
    ("gateway.authRateLimit.perMinute", 0, "perMinute"),
    ("gateway.refreshRateLimit.perMinute", 0, "perMinute"),
    ("networkPolicy.gatewayFrom", "everyone", "gatewayFrom"),
])
def test_bad_gateway_and_policy_values_are_refused(helm, key, value, message):
    r = helm.template(sets=((key, value),))
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


# --- rollouts: preStop sleep, the service's drain, grace periods ---------------------------------

def lifecycle_sleep(container):
    return container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")


@pytest.mark.parametrize("variant", ["default", "development", "production"])
def test_pods_drain_before_they_stop(variants, variant):
    r = rendered(variants, variant)
    for component in SERVICES:
        pod = r.get("Deployment", svc_name(component))["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        assert lifecycle_sleep(c) == ["/bin/sleep", "5"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["DRAIN_DELAY_MS"] == "5000"
        assert pod["terminationGracePeriodSeconds"] > 2 * 5 + 10
    pod = r.get("Deployment", f"{RELEASE}-gateway")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert lifecycle_sleep(c) == ["/bin/sleep", "5"]
    assert pod["terminationGracePeriodSeconds"] > 5


def test_drain_settings_per_service(helm):
    r = helm.template(sets=(("services.user.terminationDrainSeconds", 8),
                            ("services.room.terminationDrainSeconds", 0),
                            ("gateway.terminationDrainSeconds", 0)))
    assert r.returncode == 0, r.stderr
    drains = {}
    for component in SERVICES:
        (c,) = r.get("Deployment", svc_name(component))["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        drains[component] = (lifecycle_sleep(c), env["DRAIN_DELAY_MS"])
    assert drains == {"user-service": (["/bin/sleep", "8"], "8000"),
                      "room-service": (None, "0"),
                      "reservation-service": (["/bin/sleep", "5"], "5000")}
    (c,) = r.get("Deployment", f"{RELEASE}-gateway")["spec"]["template"]["spec"]["containers"]
    assert "lifecycle" not in c


@pytest.mark.parametrize("sets,message", [
    ((("serviceDefaults.terminationDrainSeconds", 10),),
     "services.user: terminationGracePeriodSeconds (30) must exceed "
     "2 x terminationDrainSeconds + 10 = 30"),
    ((("services.room.terminationGracePeriodSeconds", 15),),
     "services.room: terminationGracePeriodSeconds (15) must exceed"),
    ((("gateway.terminationGracePeriodSeconds", 5),),
     "gateway.terminationGracePeriodSeconds must exceed gateway.terminationDrainSeconds"),
])
def test_grace_periods_must_cover_the_drain(helm, sets, message):
    r = helm.template(sets=sets)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
