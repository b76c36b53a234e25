"""Offline checks of the chart's scale-out settings (issue 19), for every values file.

values.yaml alone and each values-*.yaml on top of it (found by listing the chart, so a new
environment is checked too) are rendered, and the manifests read back:
- every service runs an outbox publisher (one replica at a time holds its advisory lock), so its
  PodDisruptionBudget must keep one replica through a drain when it runs two or more, and must
  never block every eviction (a budget no drain can satisfy);
- its replicas repel each other on kubernetes.io/hostname (podAntiAffinity) and spread over
  nodes (and zones in production);
- the topics' partitions and replication factor per environment, the replication factor within
  what the bundled Kafka can hold (at most its nodes, at least its min.insync.replicas);
- the bundled PostgreSQL ends a vanished idle client's session within the documented bound (TCP
  keepalives, moderate; no server-wide tcp_user_timeout), the same settings scripts/pg.sh gives
  the local cluster.
Values that would break these rules are refused with a message naming them.
"""

import math
import re

import pytest
import yaml

from test_helm import (  # noqa: F401 - fixtures below
    CHART,
    RELEASE,
    ROOT,
    SERVICES,
    container_env,
    helm,
    svc_name,
)

VALUES_FILES = [None] + sorted(p.name for p in CHART.glob("values-*.yaml"))
# The outbox publisher's follower asks for the lock every second (OUTBOX_FOLLOW_MS).
# An idle vanished client's session: ended within this (docs/operations.md#a-node-that-vanishes),
# but not so fast that a short network blip ends every session on its path.
DEAD_CLIENT_MIN_S = 5
DEAD_CLIENT_MAX_S = 15
# Per environment: (replication factor, Kafka nodes).
TOPICS = {None: (1, 1), "values-development.yaml": (1, 1), "values-staging.yaml": (1, 1),
          "values-production.yaml": (3, 3)}


def render(helm, values_file, sets=()):
    files = (str(CHART / values_file),) if values_file else ()
    r = helm.template(files, tuple(sets))
    assert r.returncode == 0, r.stderr
    return r


def fewest_replicas(r, component):
    hpas = [h for h in r.kind("HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]["name"] == svc_name(component)]
    if hpas:
        return hpas[0]["spec"]["minReplicas"], hpas[0]["spec"]["maxReplicas"]
    n = r.get("Deployment", svc_name(component))["spec"]["replicas"]
    return n, n


def pods(value, replicas):
    """What a PDB count means at `replicas` pods (a percentage rounded up, as Kubernetes does)."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * replicas / 100)
    return int(value)


def evictable(spec, replicas):
    """How many of `replicas` ready pods the budget lets a drain evict at once."""
    if "minAvailable" in spec:
        return max(0, replicas - pods(spec["minAvailable"], replicas))
    return min(replicas, pods(spec["maxUnavailable"], replicas))


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_budgets_keep_a_publisher_candidate_and_never_block_drains(helm, values_file):
    r = render(helm, values_file)
    for component in SERVICES:
        dep = r.get("Deployment", svc_name(component))
        selector = dep["spec"]["selector"]["matchLabels"]
        budgets = [p for p in r.kind("PodDisruptionBudget")
                   if p["spec"]["selector"]["matchLabels"] == selector]
        assert len(budgets) == 1, f"{component}: {len(budgets)} PodDisruptionBudgets"
        spec = budgets[0]["spec"]
        assert ("minAvailable" in spec) != ("maxUnavailable" in spec), spec
        fewest, most = fewest_replicas(r, component)
        for replicas in range(fewest, most + 1):
            n = evictable(spec, replicas)
            assert n >= 1, f"{component}: {spec} blocks every eviction at {replicas} replica(s)"
            if replicas >= 2:
                assert n < replicas, (f"{component}: {spec} lets all {replicas} replicas go at "
                                      "once (no outbox publisher candidate left)")


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_replicas_repel_each_other_and_spread(helm, values_file):
    r = render(helm, values_file)
    for component in SERVICES:
        spec = r.get("Deployment", svc_name(component))["spec"]
        pod = spec["template"]["spec"]
        labels = spec["selector"]["matchLabels"]
        _, most = fewest_replicas(r, component)
        if most < 2:
            continue
        anti = pod["affinity"]["podAntiAffinity"]
        terms = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        assert [(t["weight"], t["podAffinityTerm"]["topologyKey"],
                 t["podAffinityTerm"]["labelSelector"]["matchLabels"]) for t in terms] == \
            [(100, "kubernetes.io/hostname", labels)]
        spread = {c["topologyKey"]: c for c in pod.get("topologySpreadConstraints", [])}
        # Development turns the spread off (one node); the anti-affinity still applies.
        want = set() if values_file == "values-development.yaml" else {"kubernetes.io/hostname"}
        if values_file == "values-production.yaml":
            want.add("topology.kubernetes.io/zone")
        assert want <= set(spread), (component, sorted(spread))
        for c in spread.values():
            # Soft: a cluster with one node or zone still schedules every replica.
            assert c["whenUnsatisfiable"] == "ScheduleAnyway"
            assert c["labelSelector"]["matchLabels"] == labels


def test_own_anti_affinity_required_mode_and_off(helm):
    own = ("services.room.affinity.podAntiAffinity"
           ".preferredDuringSchedulingIgnoredDuringExecution[0]")
    r = render(helm, None, ((f"{own}.weight", 7),
                            (f"{own}.podAffinityTerm.topologyKey", "topology.kubernetes.io/zone"),
                            (f"{own}.podAffinityTerm.labelSelector.matchLabels.team", "rooms")))
    (term,) = r.get("Deployment", svc_name("room-service"))["spec"]["template"]["spec"][
        "affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["weight"] == 7, "a service's own podAntiAffinity replaces the chart's"
    node = ("serviceDefaults.affinity.nodeAffinity"
            ".preferredDuringSchedulingIgnoredDuringExecution[0]")
    r = render(helm, None, (("serviceDefaults.podAntiAffinity", "required"),
                            (f"{node}.weight", 1),
                            (f"{node}.preference.matchExpressions[0].key", "pool"),
                            (f"{node}.preference.matchExpressions[0].operator", "Exists")))
    aff = r.get("Deployment", svc_name("room-service"))["spec"]["template"]["spec"]["affinity"]
    assert aff["nodeAffinity"], "the service's own affinity is kept"
    (term,) = aff["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    r = render(helm, None, (("serviceDefaults.podAntiAffinity", "none"),))
    assert "affinity" not in r.get("Deployment", svc_name("room-service"))["spec"]["template"][
        "spec"]
    r = helm.template((), (("serviceDefaults.podAntiAffinity", "sometimes"),))
    assert r.returncode != 0 and "podAntiAffinity" in r.stderr, r.stderr


@pytest.mark.parametrize("sets,message", [
    ((("serviceDefaults.podDisruptionBudget.minAvailable", 2),),
     "services.user: podDisruptionBudget minAvailable 2 would block every eviction with 2"),
    ((("serviceDefaults.podDisruptionBudget.minAvailable", "100%"),),
     "minAvailable 100% would block every eviction"),
    ((("serviceDefaults.podDisruptionBudget.maxUnavailable", 0),),
     "maxUnavailable 0 would block every eviction"),
    ((("serviceDefaults.podDisruptionBudget.maxUnavailable", 2),),
     "maxUnavailable 2 lets all 2 replicas be evicted at once"),
    ((("services.reservation.autoscaling.minReplicas", 1),
      ("services.reservation.podDisruptionBudget.minAvailable", 1)),
     "services.reservation: podDisruptionBudget minAvailable 1 would block every eviction "
     "with 1 replica"),
    ((("serviceDefaults.podDisruptionBudget.minAvailable", 0),),
     "minAvailable 0 lets all 2 replicas be evicted at once"),
    ((("kafka.topics.replicationFactor", 3),),
     "kafka.topics.replicationFactor (3) must be at most kafka.replicas (1)"),
    ((("kafka.replicas", 3), ("kafka.topics.replicationFactor", 1)),
     "kafka.topics.replicationFactor (1) must be at least the bundled Kafka's "
     "min.insync.replicas (2)"),
    ((("kafka.replicas", 3), ("kafka.topics.replicationFactor", 2)),
     "kafka.topics.replicationFactor (2) must be at least the bundled Kafka's "
     "min.insync.replicas + 1 (3) with 3 nodes: with as many copies as in-sync replicas "
     "required, one broker down (a node drain) stops the producers"),
    ((("services.room.terminationDrainSeconds", 4),),
     "services.room: terminationDrainSeconds (4) must be 0 (no drain) or at least 5: it must "
     "exceed the gateway's upstream keepalive_timeout (4 s"),
    ((("serviceDefaults.terminationDrainSeconds", 1),),
     "services.user: terminationDrainSeconds (1) must be 0 (no drain) or at least 5"),
])
def test_budgets_and_replication_that_cannot_work_are_refused(helm, sets, message):
    r = helm.template((), tuple(sets))
    assert r.returncode != 0, f"rendered with {sets}"
    assert message in r.stderr, r.stderr


def test_drain_seconds_zero_or_beyond_the_gateways_keepalive_are_accepted(helm):
    for seconds in (0, 5):
        render(helm, None, (("serviceDefaults.terminationDrainSeconds", seconds),))


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_budgets_let_unhealthy_pods_go(helm, values_file):
    """A pod that is not Ready (crash loop, Pending under required anti-affinity) may always be
    evicted: counted against maxUnavailable 1 it would block every drain."""
    # Not Kafka's: a broker that is not Ready may be catching up its copies (the default,
    # IfHealthyBudget, keeps it through a drain while the others are short).
    budgets = [p for p in render(helm, values_file).kind("PodDisruptionBudget")
               if not p["metadata"]["name"].endswith("-kafka")]
    assert budgets
    assert all(p["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow" for p in budgets), budgets


def test_budgets_that_work_are_accepted(helm):
    for sets in ((("serviceDefaults.podDisruptionBudget.minAvailable", 1),),
                 (("serviceDefaults.podDisruptionBudget.maxUnavailable", "50%"),),
                 (("serviceDefaults.podDisruptionBudget.enabled", "false"),
                  ("serviceDefaults.podDisruptionBudget.maxUnavailable", 0))):
        render(helm, None, sets)
    r = render(helm, "values-development.yaml",
               (("serviceDefaults.podDisruptionBudget.minAvailable", "50%"),
                ("serviceDefaults.autoscaling.minReplicas", 2)))
    (pdb,) = [p for p in r.kind("PodDisruptionBudget")
              if p["metadata"]["name"] == svc_name("user-service")]
    assert pdb["spec"] == {"minAvailable": "50%", "selector": pdb["spec"]["selector"],
                           "unhealthyPodEvictionPolicy": "AlwaysAllow"}


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_topic_partitions_and_replication_per_environment(helm, values_file):
    r = render(helm, values_file)
    (c,) = r.get("Job", f"{RELEASE}-kafka-topics")["spec"]["template"]["spec"]["containers"]
    env = {k: v.get("value") for k, v in container_env(c).items()}
    rf, nodes = TOPICS[values_file]
    # The partitions the values give (the environment's file, else values.yaml).
    want = yaml.safe_load((CHART / "values.yaml").read_text())["kafka"]["topics"]["partitions"]
    if values_file:
        topics = (yaml.safe_load((CHART / values_file).read_text()).get("kafka") or {}).get(
            "topics") or {}
        want = topics.get("partitions", want)
    assert int(env["PARTITIONS"]) == want >= 1
    if values_file == "values-production.yaml":
        # Room for as many consumers as production's least replicas, twice (issue 19: 6).
        assert want >= 6
    assert int(env["REPLICATION_FACTOR"]) == rf
    kafka = r.get("StatefulSet", f"{RELEASE}-kafka")
    assert kafka["spec"]["replicas"] == nodes
    (k,) = kafka["spec"]["template"]["spec"]["containers"]
    min_isr = int(container_env(k)["KAFKA_MIN_INSYNC_REPLICAS"]["value"])
    assert min_isr <= rf <= nodes


def pg_settings(r):
    (pg,) = r.get("StatefulSet", f"{RELEASE}-postgresql")["spec"]["template"]["spec"][
        "containers"]
    args = pg["args"]
    assert args[0] == "postgres"
    out = {}
    for flag, setting in zip(args[1::2], args[2::2], strict=True):
        assert flag == "-c", args
        name, value = setting.split("=", 1)
        out[name] = value
    return out


def detection_seconds(s):
    """When the server gives a vanished idle client up: keepalives after idle, every interval,
    count of them."""
    return int(s["tcp_keepalives_idle"]) + int(s["tcp_keepalives_interval"]) * int(
        s["tcp_keepalives_count"])


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_postgresql_ends_a_vanished_clients_session_moderately(helm, values_file):
    """Within DEAD_CLIENT_MAX_S, not faster than a short network blip: every session ends at once
    when a path loses packets for as long as the bound.  No server-wide tcp_user_timeout (it also
    cuts off stalled readers and replicas): the publisher's session sets its own (outbox.c)."""
    s = pg_settings(render(helm, values_file))
    assert int(s["max_connections"]) > 0
    assert DEAD_CLIENT_MIN_S <= detection_seconds(s) <= DEAD_CLIENT_MAX_S, s
    assert "tcp_user_timeout" not in s, s
    assert 0 < int(s["client_connection_check_interval"]) <= 5000
    assert "idle_session_timeout" not in s, "it would end the pools' idle sessions"


def test_local_cluster_has_the_charts_settings(helm):
    """scripts/pg.sh (make run, the tests) writes the same settings into suite.conf."""
    chart = pg_settings(render(helm, None))
    text = (ROOT / "scripts" / "pg.sh").read_text()
    local = dict(re.findall(r"^(\w+) = (\S+)$", text, re.M))
    for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count",
                 "client_connection_check_interval"):
        assert local.get(name) == chart[name], (name, local.get(name), chart[name])
    assert "idle_session_timeout" not in local and "tcp_user_timeout" not in local
