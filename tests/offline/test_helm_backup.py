"""Offline checks of the database backups (issue 17, item 3): the CronJob rendered per environment
and validated like the rest of the chart, its hardening and NetworkPolicy, refused values, the
script (files/backup.sh, also behind `make backup`) through shellcheck, and the script's upload,
prune, dump and restore logic run with fake `aws`, `pg_dump`, `pg_restore` and `psql` on PATH that
record their calls.  The real dump and restore are tested against PostgreSQL and the running
services in tests/integration/test_backup_restore.py."""

import datetime
import json
import os
import re
import shutil
import subprocess
import textwrap

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

SCRIPT = CHART / "files" / "backup.sh"
LOCAL_SCRIPT = ROOT / "scripts" / "backup.sh"
DATABASES = ["reservation_db", "room_db", "user_db"]  # consumers' databases first
BACKUP = {
    "backup.enabled": "true",
    "backup.s3.bucket": "rooms-backups",
    "backup.s3.credentialsSecret.name": "rooms-s3",
    "backup.s3.endpoint": "http://minio.storage.svc:9000",
    "backup.s3.forcePathStyle": "true",
    "backup.retentionDays": Literal("7"),
}
AWS_S3 = {  # AWS S3 itself: no endpoint, the default prefix and retention
    "backup.enabled": "true",
    "backup.s3.bucket": "rooms-backups",
    "backup.s3.region": "eu-central-1",
    "backup.s3.credentialsSecret.name": "rooms-s3",
    "backup.s3.credentialsSecret.accessKeyIdKey": "id",
    "backup.s3.credentialsSecret.secretAccessKeyKey": "secret",
}


def sets(d):
    return tuple(sorted(d.items()))


def pod_spec(cronjob):
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.fixture(scope="session")
def backup_render(helm):
    r = helm.template(sets=sets(BACKUP))
    assert r.returncode == 0, r.stderr
    return r


def cronjob(r):
    (cj,) = r.kind("CronJob")
    assert cj["metadata"]["name"] == f"{RELEASE}-backup"
    return cj


# --- rendering -----------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["default", "development", "staging", "production",
                                     "monitoring", "external"])
def test_backups_are_off_by_default(variants, variant):
    r = rendered(variants, variant)
    assert not r.kind("CronJob")
    assert not [d for d in r.docs if d["metadata"]["name"] == f"{RELEASE}-backup"]
    if variant != "external":
        pg = r.get("NetworkPolicy", f"{RELEASE}-postgresql")
        (rule,) = pg["spec"]["ingress"]
        components = {p["podSelector"]["matchLabels"][COMPONENT] for p in rule["from"]}
        assert "backup" not in components


@pytest.mark.parametrize("env", ["development", "staging", "production", "external"])
def test_every_environment_renders_lints_and_validates_with_backups(
        helm, env, external_values_file, kubernetes_validate_bin, tmp_path):
    files = ((env_file("production"), external_values_file) if env == "external"
             else (env_file(env),))
    r = helm.template(files=files, sets=sets(BACKUP))
    assert r.returncode == 0, r.stderr
    cronjob(r)
    docs = [d for d in r.docs if d["kind"] not in
            {"ServiceMonitor", "PrometheusRule", "AlertmanagerConfig"}]
    path = tmp_path / "backup.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    proc = subprocess.run([kubernetes_validate_bin, "--strict", "--quiet", "-k", KUBE_VERSION,
                           str(path)], capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "ERROR" not in out and "Couldn't find schema" not in out, out
    args = ["lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION]
    for f in files:
        args += ["-f", f]
    for k, v in {**SECRETS, **BACKUP}.items():
        args += ["--set-string" if isinstance(v, str) and v not in ("true", "false") else "--set",
                 f"{k}={v}"]
    proc = helm(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_configmap_holds_the_one_script(backup_render):
    cm = backup_render.get("ConfigMap", f"{RELEASE}-backup")
    assert cm["data"] == {"backup.sh": SCRIPT.read_text()}
    # make backup runs this very file (no copy of it elsewhere).
    assert "helm/meeting-rooms/files/backup.sh" in LOCAL_SCRIPT.read_text()


def test_cronjob_schedule_and_runs(backup_render, helm):
    cj = cronjob(backup_render)
    spec = cj["spec"]
    assert spec["schedule"] == "17 2 * * *" and "timeZone" not in spec
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 2 and job["activeDeadlineSeconds"] == 3600
    pod = pod_spec(cj)
    assert pod["restartPolicy"] == "Never"
    assert [c["name"] for c in pod["initContainers"]] == ["dump"]
    assert [c["name"] for c in pod["containers"]] == ["upload"]
    (dump,), (upload,) = pod["initContainers"], pod["containers"]
    assert dump["command"] == ["/bin/bash", "/opt/meeting-rooms/backup.sh", "dump", "/backup"]
    assert upload["command"] == ["/bin/bash", "/opt/meeting-rooms/backup.sh", "upload", "/backup"]
    r = helm.template(sets=sets({**BACKUP, "backup.schedule": "0 */6 * * *",
                                 "backup.timeZone": "Europe/Berlin"}))
    assert r.returncode == 0, r.stderr
    assert cronjob(r)["spec"]["schedule"] == "0 */6 * * *"
    assert cronjob(r)["spec"]["timeZone"] == "Europe/Berlin"


def test_each_container_gets_only_its_own_credentials(backup_render, helm):
    pod = pod_spec(cronjob(backup_render))
    (dump,), (upload,) = pod["initContainers"], pod["containers"]
    d, u = env_of(dump), env_of(upload)
    assert d["BACKUP_DATABASES"] == u["BACKUP_DATABASES"] == " ".join(DATABASES)
    assert d["PGHOST"] == f"{RELEASE}-postgresql" and d["PGPORT"] == "5432"
    assert d["PGUSER"] == "meeting_rooms" and d["PGSSLMODE"] == "disable"
    assert d["PGPASSWORD"] == {"secretKeyRef": {"name": f"{RELEASE}-postgresql",
                                                "key": "password"}}
    assert u["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "rooms-s3",
                                                       "key": "AWS_ACCESS_KEY_ID"}}
    assert u["AWS_SECRET_ACCESS_KEY"] == {"secretKeyRef": {"name": "rooms-s3",
                                                           "key": "AWS_SECRET_ACCESS_KEY"}}
    assert u["BACKUP_S3_BUCKET"] == "rooms-backups"
    assert u["BACKUP_S3_ENDPOINT"] == "http://minio.storage.svc:9000"
    assert u["BACKUP_S3_PATH_STYLE"] == "true" and u["BACKUP_RETENTION_DAYS"] == "7"
    # The default prefix is the release's own: releases sharing a bucket never overwrite or
    # prune each other's dumps.
    assert u["BACKUP_S3_PREFIX"] == f"meeting-rooms/{NAMESPACE}/{RELEASE}/%Y-%m-%d/"
    assert u["AWS_REGION"] == "us-east-1" and u["AWS_EC2_METADATA_DISABLED"] == "true"
    assert not {k for k in d if k.startswith("AWS_")}
    assert not {k for k in u if k.startswith("PG")}

    r = helm.template(sets=sets(AWS_S3))
    assert r.returncode == 0, r.stderr
    (upload,) = pod_spec(cronjob(r))["containers"]
    u = env_of(upload)
    assert u["BACKUP_S3_ENDPOINT"] == "" and u["BACKUP_S3_PATH_STYLE"] == "false"
    assert u["AWS_REGION"] == "eu-central-1" and u["BACKUP_RETENTION_DAYS"] == "14"
    assert u["AWS_ACCESS_KEY_ID"]["secretKeyRef"] == {"name": "rooms-s3", "key": "id"}
    assert u["AWS_SECRET_ACCESS_KEY"]["secretKeyRef"] == {"name": "rooms-s3", "key": "secret"}


def test_external_database_with_tls(helm, external_values_file):
    r = helm.template(files=(env_file("production"), external_values_file), sets=sets({
        **BACKUP, "externalDatabase.tls.caSecret.name": "db-ca",
        "externalDatabase.tls.clientSecret.name": "db-client"}))
    assert r.returncode == 0, r.stderr
    pod = pod_spec(cronjob(r))
    (dump,) = pod["initContainers"]
    d = env_of(dump)
    assert (d["PGHOST"], d["PGPORT"], d["PGUSER"]) == ("db.example.internal", "6432", "rooms_app")
    assert d["PGSSLMODE"] == "verify-full"
    assert d["PGPASSWORD"] == {"secretKeyRef": {"name": "rooms-db", "key": "pw"}}
    assert d["PGSSLROOTCERT"] == "/etc/meeting-rooms/postgresql/ca.crt"
    assert d["PGSSLKEY"] == "/etc/meeting-rooms/postgresql/client.key"
    mounts = {m["name"]: m for m in dump["volumeMounts"]}
    assert mounts["postgresql-tls"]["readOnly"] is True
    assert "postgresql-tls" in {v["name"] for v in pod["volumes"]}


def test_the_backup_pod_is_hardened(backup_render):
    cj = cronjob(backup_render)
    pod = pod_spec(cj)
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 999
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {name for name, v in volumes.items() if "emptyDir" in v}
    assert writable == {"dumps", "tmp"}
    assert volumes["dumps"]["emptyDir"]["sizeLimit"] == "4Gi"
    assert volumes["script"]["configMap"]["name"] == f"{RELEASE}-backup"
    for c in pod["initContainers"] + pod["containers"]:
        where = c["name"]
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 999, where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False, where
        assert sc["capabilities"] == {"drop": ["ALL"]}, where
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][part]), where
        image, _, tag = c["image"].rpartition(":")
        assert image and re.fullmatch(r"\d+\.\d+(\.\d+)?(-[a-z0-9]+)?", tag), c["image"]
        for m in c["volumeMounts"]:
            if m["name"] not in writable or (where == "upload" and m["name"] == "dumps"):
                assert m.get("readOnly") is True, f"{where}: {m['name']} writable"
    images = {c["name"]: c["image"] for c in pod["initContainers"] + pod["containers"]}
    assert images["dump"].startswith("postgres:15.")
    assert images["upload"].startswith("amazon/aws-cli:2.")


def backup_pod(r):
    labels = cronjob(r)["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return Pod("backup", NAMESPACE, labels)


def release_pods(r):
    out = {}
    for d in r.docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            labels = d["spec"]["template"]["metadata"]["labels"]
            out[labels[COMPONENT]] = Pod(labels[COMPONENT], NAMESPACE, labels)
    return out


def test_backup_network_paths(backup_render, helm, external_values_file):
    r = backup_render
    policies, pods, bk = r.kind("NetworkPolicy"), release_pods(r), backup_pod(r)
    internet = OUTSIDERS["internet"]
    assert f"{RELEASE}-backup" in {p["metadata"]["name"] for p in policies}
    assert allowed(policies, bk, pods["postgresql"], 5432)
    assert allowed(policies, bk, internet, 9000)  # the endpoint's port
    assert not allowed(policies, bk, internet, 443)
    assert not allowed(policies, bk, internet, 5432)
    assert not allowed(policies, bk, pods["kafka"], 9092)
    for svc, port in (("user-service", 5000), ("room-service", 5001),
                      ("reservation-service", 5002)):
        assert not allowed(policies, bk, pods[svc], port)
    for src in [*pods.values(), *OUTSIDERS.values()]:
        for port in (80, 443, 5432, 8080, 9000):
            assert not allowed(policies, src, bk, port), (src.name, port)
    # The services still reach PostgreSQL, and nothing else came in with the backup's rule.
    assert allowed(policies, pods["room-service"], pods["postgresql"], 5432)
    assert not allowed(policies, pods["gateway"], pods["postgresql"], 5432)
    assert not allowed(policies, OUTSIDERS["lookalike"], pods["postgresql"], 5432)

    # AWS S3 (no endpoint): HTTPS; networkPolicy.backupTo narrows it.
    r = helm.template(sets=sets({**AWS_S3, "networkPolicy.backupTo[0].ipBlock.cidr":
                                 "52.219.0.0/16"}))
    assert r.returncode == 0, r.stderr
    (policy,) = [p for p in r.kind("NetworkPolicy") if p["metadata"]["name"] == f"{RELEASE}-backup"]
    s3_rule = policy["spec"]["egress"][1]
    assert s3_rule == {"ports": [{"port": 443, "protocol": "TCP"}],
                       "to": [{"ipBlock": {"cidr": "52.219.0.0/16"}}]}

    # An external database: its port, where networkPolicy.externalTo allows.
    r = helm.template(files=(env_file("production"), external_values_file), sets=sets(BACKUP))
    assert r.returncode == 0, r.stderr
    policies, bk = r.kind("NetworkPolicy"), backup_pod(r)
    assert allowed(policies, bk, internet, 6432)
    assert not allowed(policies, bk, internet, 5432)


@pytest.mark.parametrize("sets_,message", [
    ({"backup.enabled": "true", "backup.s3.credentialsSecret.name": "s"},
     "backup.s3.bucket is required"),
    ({"backup.enabled": "true", "backup.s3.bucket": "bkt"},
     "backup.s3.credentialsSecret.name is required"),
    ({**BACKUP, "backup.s3.prefix": "meeting-rooms/%Y-%m-%d"}, "backup.s3.prefix"),
    ({**BACKUP, "backup.s3.prefix": "/meeting-rooms/"}, "backup.s3.prefix"),
    # No fixed part to list under (pruning would scan the whole bucket), or a conversion whose
    # output pruning cannot recognise.
    ({**BACKUP, "backup.s3.prefix": "%Y-%m-%d/"}, "backup.s3.prefix"),
    ({**BACKUP, "backup.s3.prefix": "rooms/%b/"}, "backup.s3.prefix"),
    ({**BACKUP, "backup.s3.endpoint": "minio:9000"}, "backup.s3.endpoint"),
    ({**BACKUP, "backup.schedule": "daily"}, "backup.schedule"),
    ({**BACKUP, "backup.image.awsCli.tag": "latest"}, "backup.image.awsCli.tag"),
    ({**BACKUP, "backup.securityContext.runAsUser": Literal("0")}, "runAsUser"),
    ({**BACKUP, "backup.retentionDays": Literal("-1")}, "backup.retentionDays"),
])
def test_bad_backup_values_are_refused(helm, sets_, message):
    r = helm.template(sets=sets(sets_))
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


# --- the script ----------------------------------------------------------------------------------

def test_arrays_that_may_be_empty_are_expanded_safely():
    # amazon/aws-cli's image is amazonlinux:2 with bash 4.2: before 4.4, "${a[@]}" of an empty
    # array aborts under set -u.  Every such expansion must be ${a[@]+"${a[@]}"}; DATABASES is
    # refused when empty, so it may be expanded plainly.  (No bash 4.2 to run the script under.)
    for script in (SCRIPT, LOCAL_SCRIPT):
        text = "\n".join(line for line in script.read_text().splitlines()
                         if not line.lstrip().startswith("#"))
        bare = re.findall(r'(?<!\+)"\$\{(\w+)\[@\]\}"', text)
        assert set(bare) <= {"DATABASES"}, (script, bare)
    text = SCRIPT.read_text()
    assert text.index('names no database"') < text.index("\ncase $1 in")


def test_scripts_pass_shellcheck():
    assert shutil.which("shellcheck"), "shellcheck is not installed (scripts/deps.sh)"
    proc = subprocess.run(["shellcheck", str(SCRIPT), str(LOCAL_SCRIPT)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# One fake for every tool: records its name, arguments, stdin (for psql) and the environment the
# script gave it, then behaves as FAKE_<TOOL>_* say.
FAKE = textwrap.dedent("""\
    #!/usr/bin/python3
    import json, os, sys
    tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
    stdin = sys.stdin.read() if tool == "psql" else ""
    cfg = os.environ.get("AWS_CONFIG_FILE")
    rec = {"tool": tool, "args": args, "stdin": stdin,
           "config": open(cfg).read() if cfg else None}
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(json.dumps(rec) + "\\n")
    fail = os.environ.get("FAKE_FAIL", "")
    if fail and fail in " ".join([tool] + args):
        sys.exit(3)
    if tool == "aws" and "list-objects-v2" in args:
        sys.stdout.write(os.environ.get("FAKE_LISTING", ""))
    elif tool == "pg_dump":
        sys.stdout.write("PGDMP fake dump of " + args[-1])
    elif tool == "psql" and "pg_stat_activity" in stdin:
        sys.stdout.write(os.environ.get("FAKE_BUSY", "") + "\\n")
""")


@pytest.fixture()
def fake(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("aws", "pg_dump", "pg_restore", "psql"):
        (bindir / tool).write_text(FAKE)
        os.chmod(bindir / tool, 0o755)
    log = tmp_path / "calls.jsonl"

    def run(*args, **env):
        log.write_text("")
        e = {"PATH": f"{bindir}:/usr/bin:/bin", "FAKE_LOG": str(log), "HOME": str(tmp_path),
             "TMPDIR": str(tmp_path), **env}
        proc = subprocess.run(["bash", str(SCRIPT), *args], env=e, capture_output=True,
                              text=True, timeout=60)
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        return proc, calls

    run.dir = tmp_path
    return run


def s3_env(**extra):
    return {"BACKUP_S3_BUCKET": "rooms-backups", "BACKUP_RETENTION_DAYS": "7", **extra}


def ago(**delta):
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(**delta)


def aws_time(t, style):
    if style == "cli":  # what AWS CLI v2 prints
        return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # as some S3-compatible services send it


def listing(objects):
    return "".join(f"{key}\t{modified}\n" for key, modified in objects)


def deleted(calls):
    return [c["args"][c["args"].index("--key") + 1] for c in calls
            if c["tool"] == "aws" and "delete-object" in c["args"]]


def dumps_in(tmp, names=DATABASES):
    d = tmp / "dumps"
    d.mkdir(exist_ok=True)
    for db in names:
        (d / f"{db}.dump").write_text(f"PGDMP {db}")
    return d


def test_upload_puts_each_dump_under_the_dated_prefix_then_prunes(fake):
    d = dumps_in(fake.dir)
    day = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    proc, calls = fake("upload", str(d), **s3_env(BACKUP_S3_ENDPOINT="http://minio:9000",
                                                  BACKUP_S3_PATH_STYLE="true"))
    assert proc.returncode == 0, proc.stderr
    cps = [c["args"] for c in calls if "cp" in c["args"]]
    assert [a[-1] for a in cps] == [f"s3://rooms-backups/meeting-rooms/{day}/{db}.dump"
                                    for db in DATABASES]
    assert [a[-2] for a in cps] == [str(d / f"{db}.dump") for db in DATABASES]
    for c in calls:
        assert c["tool"] == "aws"
        assert c["args"][:2] == ["--endpoint-url", "http://minio:9000"], c
        assert "addressing_style = path" in c["config"], c
    (lst,) = [c["args"] for c in calls if "list-objects-v2" in c["args"]]
    assert lst[lst.index("--bucket") + 1] == "rooms-backups"
    assert lst[lst.index("--prefix") + 1] == "meeting-rooms/"
    assert calls[-1]["args"] == lst  # pruning comes after every upload

    # AWS S3: no endpoint, virtual-hosted requests; a prefix of its own.
    proc, calls = fake("upload", str(d), **s3_env(BACKUP_S3_PREFIX="prod/rooms/%Y/%m/%d/%H%M/"))
    assert proc.returncode == 0, proc.stderr
    for c in calls:
        assert "--endpoint-url" not in c["args"] and c["config"] is None
    keys = [c["args"][-1] for c in calls if "cp" in c["args"]]
    assert len(keys) == 3
    for key in keys:
        assert re.fullmatch(rf"s3://rooms-backups/prod/rooms/{day.replace('-', '/')}/\d{{4}}/"
                            r"(reservation|room|user)_db\.dump", key), key
    (lst,) = [c["args"] for c in calls if "list-objects-v2" in c["args"]]
    assert lst[lst.index("--prefix") + 1] == "prod/rooms/"


@pytest.mark.parametrize("style", ["cli", "z"])
def test_prune_deletes_only_our_dumps_older_than_the_retention(fake, style):
    old = [("meeting-rooms/2026-01-02/user_db.dump", ago(days=30)),
           ("meeting-rooms/2026-01-02/room_db.dump", ago(days=7, hours=1)),
           ("meeting-rooms/2026-01-02/reservation_db.dump", ago(days=7, minutes=5))]
    kept = [("meeting-rooms/2026-01-09/reservation_db.dump", ago(days=6, hours=23)),
            ("meeting-rooms/2026-01-09/user_db.dump", ago(hours=1)),
            ("meeting-rooms/2026-01-02/notes.txt", ago(days=90)),          # not a dump of ours
            ("meeting-rooms/2026-01-02/other_db.dump", ago(days=90)),      # not our database
            ("meeting-rooms/2026-01-02/user_db.dump.part", ago(days=90)),
            ("elsewhere/2026-01-02/user_db.dump", ago(days=90)),           # not under the prefix
            ("meeting-rooms/2026-01-02/xuser_db.dump", ago(days=90))]
    objects = [(k, aws_time(t, style)) for k, t in old + kept]
    proc, calls = fake("prune", **s3_env(FAKE_LISTING=listing(objects)))
    assert proc.returncode == 0, proc.stderr
    assert sorted(deleted(calls)) == sorted(k for k, _ in old)
    assert "pruned 3 dump(s) older than 7 day(s)" in proc.stderr
    for c in calls:
        if "delete-object" in c["args"]:
            assert c["args"][c["args"].index("--bucket") + 1] == "rooms-backups"

    # A longer retention keeps more; an empty bucket ("None" from the CLI) is no error.
    proc, calls = fake("prune", **s3_env(BACKUP_RETENTION_DAYS="10",
                                         FAKE_LISTING=listing(objects)))
    assert proc.returncode == 0, proc.stderr
    assert deleted(calls) == ["meeting-rooms/2026-01-02/user_db.dump"]
    proc, calls = fake("prune", **s3_env(FAKE_LISTING="None\n"))
    assert proc.returncode == 0, proc.stderr
    assert deleted(calls) == []


def test_prune_deletes_only_keys_the_whole_prefix_format_produces(fake):
    prefix = "meeting-rooms/rooms/mr/%Y-%m-%d/"
    old = [(f"meeting-rooms/rooms/mr/2020-01-0{i}/{db}.dump", ago(days=90))
           for i, db in enumerate(DATABASES, 1)]
    kept = [("meeting-rooms/rooms/mr/2020-01-01/x/user_db.dump", ago(days=90)),   # deeper
            ("meeting-rooms/rooms/mr/keep-forever/user_db.dump", ago(days=900)),  # by hand
            ("meeting-rooms/rooms/mr/2020-01-01user_db.dump", ago(days=90)),
            ("meeting-rooms/rooms/mr/20200-01-01/user_db.dump", ago(days=90)),
            ("meeting-rooms/rooms/mr-staging/2020-01-01/room_db.dump", ago(days=90)),
            ("meeting-rooms/rooms/mr/staging/2020-01-01/room_db.dump", ago(days=90)),
            ("meeting-rooms/staging/mr/2020-01-01/room_db.dump", ago(days=90)),
            ("otherapp/2020-01-01/user_db.dump", ago(days=90))]
    objects = listing((k, aws_time(t, "cli")) for k, t in old + kept)
    proc, calls = fake("prune", **s3_env(BACKUP_S3_PREFIX=prefix, FAKE_LISTING=objects))
    assert proc.returncode == 0, proc.stderr
    assert sorted(deleted(calls)) == sorted(k for k, _ in old)
    (lst,) = [c["args"] for c in calls if "list-objects-v2" in c["args"]]
    assert lst[lst.index("--prefix") + 1] == "meeting-rooms/rooms/mr/"

    # Literal text after a conversion and regex characters in the prefix stand for themselves.
    prefix = "a.b/%Y%m%d-%H%M.x+/"
    objects = listing([("a.b/20200101-0102.x+/user_db.dump", aws_time(ago(days=90), "cli")),
                       ("aXb/20200101-0102.x+/user_db.dump", aws_time(ago(days=90), "cli")),
                       ("a.b/20200101-0102.xx/user_db.dump", aws_time(ago(days=90), "cli")),
                       ("a.b/20200101-0102Xx+/user_db.dump", aws_time(ago(days=90), "cli"))])
    proc, calls = fake("prune", **s3_env(BACKUP_S3_PREFIX=prefix, FAKE_LISTING=objects))
    assert proc.returncode == 0, proc.stderr
    assert deleted(calls) == ["a.b/20200101-0102.x+/user_db.dump"]

    # A prefix without a fixed part, or with a conversion pruning cannot recognise, is refused
    # before anything is listed, uploaded or deleted.
    d = dumps_in(fake.dir)
    for bad, message in (("%Y-%m-%d/", "must start with fixed text"),
                         ("rooms/%b/", "unsupported conversion %b")):
        for args in (("prune",), ("upload", str(d))):
            proc, calls = fake(*args, **s3_env(BACKUP_S3_PREFIX=bad, FAKE_LISTING=objects))
            assert proc.returncode != 0 and message in proc.stderr, proc.stderr
            assert calls == []


def test_retention_zero_keeps_everything(fake):
    d = dumps_in(fake.dir)
    proc, calls = fake("upload", str(d), **s3_env(BACKUP_RETENTION_DAYS="0", FAKE_LISTING=listing(
        [("meeting-rooms/2020-01-01/user_db.dump", aws_time(ago(days=2000), "cli"))])))
    assert proc.returncode == 0, proc.stderr
    assert len([c for c in calls if "cp" in c["args"]]) == 3
    assert not [c for c in calls if "list-objects-v2" in c["args"] or "delete-object" in c["args"]]


def test_failures_stop_before_anything_is_deleted(fake):
    d = dumps_in(fake.dir)
    objects = listing([("meeting-rooms/2020-01-01/user_db.dump", aws_time(ago(days=90), "cli"))])
    # An upload that fails: non-zero, the later dumps are not uploaded, nothing is pruned.
    proc, calls = fake("upload", str(d), **s3_env(FAKE_LISTING=objects,
                                                  FAKE_FAIL="room_db.dump s3://"))
    assert proc.returncode != 0
    assert "uploading room_db.dump failed" in proc.stderr
    assert not [c for c in calls if "user_db.dump" in " ".join(c["args"])]
    assert not [c for c in calls if "list-objects-v2" in c["args"]]
    # A listing that fails deletes nothing.
    proc, calls = fake("prune", **s3_env(FAKE_LISTING=objects, FAKE_FAIL="list-objects-v2"))
    assert proc.returncode != 0 and deleted(calls) == []
    # A missing dump: nothing is uploaded at all.
    (d / "room_db.dump").unlink()
    proc, calls = fake("upload", str(d), **s3_env(FAKE_LISTING=objects))
    assert proc.returncode != 0 and "no dump" in proc.stderr and calls == []
    # No bucket, a bad retention, a prefix without its final /.
    for env in ({"BACKUP_S3_BUCKET": ""}, {"BACKUP_RETENTION_DAYS": "7d"},
                {"BACKUP_S3_PREFIX": "meeting-rooms/%Y"}):
        proc, calls = fake("prune", **{**s3_env(FAKE_LISTING=objects), **env})
        assert proc.returncode != 0 and deleted(calls) == [], env


def test_dump_writes_each_database_in_order_and_never_a_partial_file(fake):
    out = fake.dir / "out"
    proc, calls = fake("dump", str(out))
    assert proc.returncode == 0, proc.stderr
    assert [c["tool"] for c in calls] == ["pg_dump"] * 3
    assert [c["args"] for c in calls] == [["--format=custom", "--no-password", f"--dbname={db}"]
                                          for db in DATABASES]
    assert sorted(os.listdir(out)) == sorted(f"{db}.dump" for db in DATABASES)
    assert (out / "room_db.dump").read_text() == "PGDMP fake dump of --dbname=room_db"

    out2 = fake.dir / "out2"
    proc, calls = fake("dump", str(out2), FAKE_FAIL="--dbname=room_db")
    assert proc.returncode != 0 and "pg_dump of room_db failed" in proc.stderr
    assert sorted(os.listdir(out2)) == ["reservation_db.dump", "room_db.dump.part"]


def test_restore_checks_everything_before_dropping_anything(fake):
    d = dumps_in(fake.dir)
    env = {"PGHOST": "/nowhere"}
    proc, calls = fake("restore", str(d), **env)
    assert proc.returncode == 0, proc.stderr
    drops = [c["stdin"] for c in calls if c["tool"] == "psql" and "DROP DATABASE" in c["stdin"]]
    creates = [c["args"] for c in calls if c["tool"] == "pg_restore" and "--create" in c["args"]]
    assert len(drops) == 3 and creates == [["--create", "--exit-on-error", "--no-password",
                                            "--dbname=postgres"]] * 3
    # Every dump is read first, then the sessions are checked, then each database is dropped
    # right before its own restore.
    steps = [("list" if "--list" in c["args"] else "create" if "--create" in c["args"]
              else "busy" if "pg_stat_activity" in c["stdin"]
              else "drop" if "DROP DATABASE" in c["stdin"] else "?")
             for c in calls]
    assert steps == ["list"] * 3 + ["busy"] + ["drop", "create"] * 3, steps
    assert all(f"-v db={db}" in " ".join(c["args"]) for c, db in
               zip([c for c in calls if "DROP" in c["stdin"]], DATABASES, strict=True))

    # Sessions still connected (the services): refused, nothing dropped.
    proc, calls = fake("restore", str(d), FAKE_BUSY="room_db (room-service)", **env)
    assert proc.returncode != 0 and "room_db (room-service)" in proc.stderr
    assert not [c for c in calls if "DROP DATABASE" in c["stdin"] or "--create" in c["args"]]
    # A dump missing or unreadable: refused before any database is touched.
    proc, calls = fake("restore", str(d), FAKE_FAIL="pg_restore --list", **env)
    assert proc.returncode != 0 and not [c for c in calls if c["tool"] == "psql"]
    (d / "user_db.dump").unlink()
    proc, calls = fake("restore", str(d), **env)
    assert proc.returncode != 0 and "no dump" in proc.stderr
    assert [c["tool"] for c in calls] == ["pg_restore", "pg_restore"]  # the --list of two
