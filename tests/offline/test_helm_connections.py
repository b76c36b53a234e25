"""Offline checks that the bundled PostgreSQL's max_connections fits what the services can open.

For every values file of the chart (values.yaml alone, then each values-*.yaml on top of it, found
by listing the chart, so a new environment is checked too) the rendered manifests are read back:
each service's DB_POOL_SIZE (Deployment env), the replicas it can reach (the HPA's maxReplicas,
else the Deployment's replicas) plus the one pod a rollout adds (maxSurge), and the server's
max_connections (StatefulSet args).  The sum of (replicas + 1) x (pool + the sessions a replica
opens outside its pool) must leave PostgreSQL's superuser reserve and a headroom free.  The count
of sessions outside the pool is this file's own, not read from the chart, so lowering the chart's
figure fails here.
"""

import re

import pytest
import yaml

from test_helm import (  # noqa: F401 - fixtures below
    CHART,
    RELEASE,
    SERVICES,
    helm,
    svc_name,
)

# Per replica, besides the pool (docs/operations.md#database-connections): outbox publisher,
# sweeper, migrations at start, a lost-COMMIT resolution, room-service's cache LISTEN; and
# reservation-service's WEBHOOK_SENDERS (read from the Deployment).
SESSIONS_OUTSIDE_POOL = 5
SUPERUSER_RESERVED = 3  # PostgreSQL 15's superuser_reserved_connections default
MIN_HEADROOM = 10  # for an operator's psql, a backup, an exporter
VALUES_FILES = sorted(p.name for p in CHART.glob("values-*.yaml"))


def max_connections(r):
    (pg,) = r.get("StatefulSet", f"{RELEASE}-postgresql")["spec"]["template"]["spec"][
        "containers"]
    args = " ".join(pg.get("args", []))
    m = re.search(r"max_connections=(\d+)", args)
    assert m, f"the PostgreSQL container sets no max_connections: {pg.get('args')}"
    return int(m.group(1))


def service_connections(r):
    """{component: (replicas at most, pool size, connections at most)}."""
    out = {}
    for component in SERVICES:
        dep = r.get("Deployment", svc_name(component))
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        assert env.get("DB_POOL_SIZE"), f"{component}: no DB_POOL_SIZE in its environment"
        pool = int(env["DB_POOL_SIZE"])
        hpas = [h for h in r.kind("HorizontalPodAutoscaler")
                if h["spec"]["scaleTargetRef"]["name"] == svc_name(component)]
        replicas = hpas[0]["spec"]["maxReplicas"] if hpas else dep["spec"]["replicas"]
        surge = dep["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
        assert isinstance(surge, int), surge
        # reservation-service's webhook senders, each with a session of its own (the service's
        # default is 2 when the chart sets none).
        senders = int(env.get("WEBHOOK_SENDERS") or (2 if component == "reservation-service"
                                                     else 0))
        out[component] = (replicas, pool,
                          (replicas + surge) * (pool + SESSIONS_OUTSIDE_POOL + senders))
    return out


@pytest.mark.parametrize("values_file", ["(values.yaml only)", *VALUES_FILES])
def test_max_connections_fits_every_service_with_headroom(helm, values_file):
    files = () if values_file.startswith("(") else (str(CHART / values_file),)
    r = helm.template(files)
    assert r.returncode == 0, r.stderr
    conns = service_connections(r)
    need = sum(c for _, _, c in conns.values())
    have = max_connections(r)
    free = have - SUPERUSER_RESERVED - need
    assert free >= MIN_HEADROOM, (values_file, have, conns)
    # Sized from the pools, not a blanket figure: the headroom is the chart's, not thousands.
    assert free <= 4 * MIN_HEADROOM + 20, (values_file, have, conns)


def test_max_connections_follows_replicas_and_pool_sizes(helm):
    base = helm.template()
    bigger = helm.template((), (("services.room.dbPoolSize", 20),
                                ("services.reservation.autoscaling.maxReplicas", 9)))
    assert bigger.returncode == 0, bigger.stderr
    before, after = service_connections(base), service_connections(bigger)
    assert after["room-service"][1] == 20 and after["reservation-service"][0] == 9
    assert after["user-service"] == before["user-service"]
    grown = sum(c for *_, c in after.values()) - sum(c for *_, c in before.values())
    assert grown > 0
    assert max_connections(bigger) - max_connections(base) == grown


def test_max_connections_counts_the_webhook_senders(helm):
    base = helm.template()
    more = helm.template((), (("services.reservation.webhookSenders", 12),))
    assert more.returncode == 0, more.stderr
    dep = more.get("Deployment", svc_name("reservation-service"))
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert {"name": "WEBHOOK_SENDERS", "value": "12"} in c["env"]
    replicas = service_connections(more)["reservation-service"][0]
    assert max_connections(more) - max_connections(base) == (replicas + 1) * 10
    for other in ("user-service", "room-service"):
        (c,) = more.get("Deployment", svc_name(other))["spec"]["template"]["spec"]["containers"]
        assert "WEBHOOK_SENDERS" not in {e["name"] for e in c["env"]}
    bad = helm.template((), (("services.reservation.webhookSenders", 33),))
    assert bad.returncode != 0


def test_max_connections_counts_the_mail_senders_with_mail_on(helm):
    base = helm.template()
    off = helm.template((), (("services.reservation.mailSenders", 12),))
    assert off.returncode == 0, off.stderr
    assert max_connections(off) == max_connections(base)  # mail off: no mail senders
    on = (("config.SMTP_URL", "smtp://mail.example.com:587"),
          ("config.SMTP_FROM", "rooms@example.com"))
    mail = helm.template((), on)
    more = helm.template((), on + (("services.reservation.mailSenders", 12),))
    assert more.returncode == 0, more.stderr
    (c,) = more.get("Deployment", svc_name("reservation-service"))["spec"]["template"]["spec"][
        "containers"]
    assert {"name": "MAIL_SENDERS", "value": "12"} in c["env"]
    replicas = service_connections(more)["reservation-service"][0]
    assert max_connections(mail) - max_connections(base) == (replicas + 1) * 2
    assert max_connections(more) - max_connections(base) == (replicas + 1) * 12
    assert helm.template((), (("services.reservation.mailSenders", 33),)).returncode != 0


def test_explicit_max_connections_below_the_need_is_refused(helm):
    ok = helm.template((), (("postgresql.maxConnections", 1000),))
    assert ok.returncode == 0, ok.stderr
    assert max_connections(ok) == 1000
    low = helm.template((), (("postgresql.maxConnections", 100),))
    assert low.returncode != 0
    assert "postgresql.maxConnections (100) is below" in low.stderr, low.stderr


def test_gateway_keepalive_pool_must_stay_below_the_worker_threads(helm):
    """Every gateway pod's idle upstream connections (workers x 2 groups x upstreamKeepalive), at
    the gateway's most pods, at most half the threads of a service's fewest pods (the defaults:
    2 gateway pods, services at least 2)."""
    r = helm.template((), (("config.NUM_THREADS", "127"), ("gateway.upstreamKeepalive", 16)))
    assert r.returncode != 0
    assert ("services.user: 2 gateway replicas (gateway.autoscaling.maxReplicas when enabled, "
            "else gateway.replicaCount) x gateway.workerProcesses (2) x 2 upstream groups x "
            "gateway.upstreamKeepalive (16) = 128 idle upstream connections must stay at most "
            "half of the service's fewest replicas (2) x config.NUM_THREADS (127) = 254"
            ) in r.stderr, r.stderr
    ok = helm.template((), (("config.NUM_THREADS", "128"), ("gateway.upstreamKeepalive", 16)))
    assert ok.returncode == 0, ok.stderr
    conf = ok.get("ConfigMap", f"{RELEASE}-gateway")["data"]["gateway.conf"]
    assert conf.count("keepalive 16;") == 6


def test_gateway_keepalive_counts_the_gateways_most_replicas(helm):
    """The gateway's HPA maximum counts, not its replicaCount: production's values fit at 6
    gateway pods, and are refused at 12."""
    files = (str(CHART / "values-production.yaml"),)
    assert helm.template(files, ()).returncode == 0
    r = helm.template(files, (("gateway.autoscaling.maxReplicas", 12),))
    assert r.returncode != 0
    assert "12 gateway replicas (gateway.autoscaling.maxReplicas when enabled" in r.stderr, r.stderr
    r = helm.template((), (("gateway.replicaCount", 5),))
    assert r.returncode != 0 and "5 gateway replicas" in r.stderr, r.stderr


def test_values_files_set_the_pool_explicitly():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["serviceDefaults"]["dbPoolSize"] >= 1
    assert values["serviceDefaults"]["dbSessionsOutsidePool"] >= SESSIONS_OUTSIDE_POOL
