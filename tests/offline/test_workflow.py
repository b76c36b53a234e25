"""Offline checks of .github/workflows/cicd.yml.

actionlint (pinned; conftest.py runs tests/offline/tools.sh) must pass with no ignores; the
structure is checked as data (triggers, jobs, permissions, pinned actions, secrets); and the
shell steps that compute tags, write the kubeconfig, run helm and kubectl are executed here with
stub helm/kubectl (recording their argv), after which the recorded helm arguments are fed to the
real chart with `helm template` so the workflow and helm/meeting-rooms cannot drift apart.
"""
import base64
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "cicd.yml"
SERVICES = ["user-service", "room-service", "reservation-service"]
ENVIRONMENTS = ["development", "staging", "production"]
SHA = "0123456789abcdef0123456789abcdef01234567"
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?"
                    r"@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers

@pytest.fixture(scope="module")
def wf():
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict), "the workflow is not a YAML mapping"
    if True in data and "on" not in data:  # YAML 1.1 reads a bare `on` as true
        data["on"] = data.pop(True)
    return data


def jobs(wf):
    return wf["jobs"]


def steps(wf, job):
    return wf["jobs"][job]["steps"]


def step(wf, job, pred):
    found = [s for s in steps(wf, job) if pred(s)]
    assert len(found) == 1, f"{job}: want one matching step, found {len(found)}"
    return found[0]


def step_running(wf, job, text):
    return step(wf, job, lambda s: text in s.get("run", ""))


def step_using(wf, job, action):
    return step(wf, job, lambda s: s.get("uses", "").split("@")[0] == action)


def uses_all(wf):
    return [(name, s["uses"]) for name, j in jobs(wf).items() for s in j.get("steps", [])
            if "uses" in s]


def expr_value(text, event, inputs):
    """Evaluate the few expression forms the workflow uses for the environment:
    `${{ inputs.environment || 'development' }}` (or plain strings)."""
    m = re.fullmatch(r"\$\{\{\s*inputs\.(\w+)\s*\|\|\s*'([^']*)'\s*\}\}", text.strip())
    if m:
        return inputs.get(m.group(1)) or m.group(2) if event == "workflow_dispatch" else m.group(2)
    assert "${{" not in text, f"unexpected expression {text!r}"
    return text


def if_true(cond, event):
    """Evaluate a job `if:` made of github.event_name comparisons, || and &&."""
    if cond is None:
        return True
    e = cond.strip()
    e = re.sub(r"^\$\{\{\s*(.*?)\s*\}\}$", r"\1", e)
    assert re.fullmatch(r"[\s\w.'=!|&()-]*", e), f"unsupported if: {cond}"
    e = e.replace("github.event_name", "EV").replace("||", " or ").replace("&&", " and ")
    return bool(eval(e, {"__builtins__": {}}, {"EV": event}))  # noqa: S307 - vetted above


def run_step(script, env, cwd, path_prefix=None):
    """Run a step's script the way GitHub does (bash --noprofile --norc -eo pipefail)."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if path_prefix:
        full["PATH"] = f"{path_prefix}:{full['PATH']}"
    full.update(env)
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                          env=full, cwd=cwd, capture_output=True, text=True, timeout=60)


STUB = """#!/usr/bin/python3
import json, os, sys
with open(os.environ["STUB_LOG"], "a") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\\n")
if sys.argv[1:2] == ["get"]:
    sys.stdout.write(os.environ.get("STUB_GET", ""))
sys.exit(int(os.environ.get("STUB_RC", "0")))
"""


@pytest.fixture
def stubs(tmp_path):
    bin_dir = tmp_path / "stubbin"
    bin_dir.mkdir()
    for name in ("helm", "kubectl"):
        p = bin_dir / name
        p.write_text(STUB)
        p.chmod(0o755)
    log = tmp_path / "stub.log"
    log.touch()

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()]

    return bin_dir, log, calls


# ---------------------------------------------------------------------------------------------
# actionlint

def test_actionlint_passes(actionlint_bin):
    for cfg in (".github/actionlint.yaml", ".github/actionlint.yml"):
        assert not (ROOT / cfg).exists(), f"{cfg} would configure actionlint (no ignores allowed)"
    r = subprocess.run([actionlint_bin, "-no-color", "-oneline", str(WORKFLOW)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and not r.stdout.strip(), f"actionlint:\n{r.stdout}{r.stderr}"


# ---------------------------------------------------------------------------------------------
# Structure

def test_triggers(wf):
    on = wf["on"]
    assert set(on) == {"push", "pull_request", "workflow_dispatch"}, on
    assert on["push"]["branches"] == ["main"], on["push"]
    assert on["pull_request"]["branches"] == ["main"], on["pull_request"]
    inputs = on["workflow_dispatch"]["inputs"]
    assert list(inputs) == ["environment"], inputs
    env = inputs["environment"]
    assert env["type"] == "choice"
    assert env["options"] == ENVIRONMENTS, env["options"]
    assert env["default"] == "development"


def test_jobs_chain_test_build_deploy(wf):
    j = jobs(wf)
    assert list(j) == ["test", "build", "deploy"], list(j)
    assert "needs" not in j["test"]
    assert j["build"]["needs"] in ("test", ["test"])
    assert j["deploy"]["needs"] in ("build", ["build"])
    for event, want in [("push", True), ("workflow_dispatch", True), ("pull_request", False)]:
        assert if_true(j["test"].get("if"), event)
        assert if_true(j["build"].get("if"), event) is want, (event, j["build"].get("if"))
        assert if_true(j["deploy"].get("if"), event) is want, (event, j["deploy"].get("if"))


def test_test_job_runs_make_test_on_bookworm_with_caches(wf):
    t = jobs(wf)["test"]
    container = t.get("container")
    image = container if isinstance(container, str) else (container or {}).get("image")
    assert image == "debian:bookworm", f"the test job runs on {image!r}, not debian:bookworm"
    assert step_running(wf, "test", "make test")["run"].strip() == "make test"
    paths, keys = [], []
    for s in steps(wf, "test"):
        if s.get("uses", "").startswith("actions/cache@"):
            paths += s["with"]["path"].split()
            keys.append(s["with"]["key"])
            assert "hashFiles(" in s["with"]["key"], s["with"]["key"]
    for want in (r"\.m2", r"^kafka/libs$", r"^~/go$", r"^\.tools$"):
        assert any(re.search(want, p) for p in paths), f"no cache of {want} in {paths}"
    assert len(set(keys)) == len(keys), f"cache keys collide: {keys}"


def test_permissions_least_privilege(wf):
    assert wf["permissions"] == {"contents": "read"}, wf["permissions"]
    for name, j in jobs(wf).items():
        perms = j.get("permissions", {})
        assert perms != "write-all" and perms != "read-all", name
        writes = {k for k, v in perms.items() if v == "write"}
        if name == "build":
            assert writes == {"packages"}, perms
            assert perms.get("contents") == "read", perms
        else:
            assert not writes, f"{name} asks for write: {perms}"


def test_concurrency_per_ref_and_environment(wf):
    c = wf["concurrency"]
    assert "github.ref" in c["group"] and "inputs.environment" in c["group"], c
    d = jobs(wf)["deploy"]["concurrency"]
    assert "inputs.environment" in d["group"] and d["cancel-in-progress"] is False, d


def test_every_action_is_pinned(wf):
    used = uses_all(wf)
    assert used
    for job, u in used:
        assert PINNED.match(u), f"{job}: {u} is not pinned to a version tag or commit"
    names = {u.split("@")[0] for _, u in used}
    for want in ("actions/checkout", "actions/cache", "docker/setup-buildx-action",
                 "docker/login-action", "docker/build-push-action", "azure/setup-helm"):
        assert want in names, f"{want} not used"
    helm = step_using(wf, "deploy", "azure/setup-helm")
    assert re.fullmatch(r"v\d+\.\d+\.\d+", str(helm["with"]["version"])), helm


def test_no_expressions_in_scripts(wf):
    """Scripts take everything through env: nothing is spliced into shell text (no injection,
    no secret in a script), and that also lets the tests below run them as they are."""
    for name, j in jobs(wf).items():
        for s in j.get("steps", []):
            assert "${{" not in s.get("run", ""), f"{name}: expression in a run script: {s}"


# ---------------------------------------------------------------------------------------------
# Secrets

def _header_secrets():
    head = []
    for line in WORKFLOW.read_text().splitlines():
        if not line.startswith("#"):
            break
        head.append(line)
    text = "\n".join(head)
    assert re.search(r"^#\s*Secrets used", text, re.M | re.I), "no 'Secrets used' comment block"
    block = text[re.search(r"Secrets used", text, re.I).start():]
    return set(re.findall(r"^#\s+([A-Z][A-Z0-9_]+)\s", block, re.M))


def test_secrets_listed_at_the_top():
    used = {name for e in re.findall(r"\$\{\{(.*?)\}\}", WORKFLOW.read_text())
            for name in re.findall(r"\bsecrets\.(\w+)", e)}
    listed = _header_secrets()
    assert used, "no secrets referenced"
    assert used <= listed, f"secrets used but not listed at the top: {used - listed}"
    assert listed <= used, f"listed but unused: {listed - used}"
    for s in ("KUBE_CONFIG", "JWT_SECRET_KEY", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET",
              "POSTGRES_PASSWORD"):
        assert s in used, s


def test_no_literal_secrets(wf):
    text = WORKFLOW.read_text()
    for pat in (r"gh[pousr]_[A-Za-z0-9]{20,}", r"github_pat_", r"AKIA[0-9A-Z]{16}",
                r"-----BEGIN", r"\beyJ[A-Za-z0-9_-]{10,}", r"[A-Za-z0-9+/]{40,}={0,2}"):
        assert not re.search(pat, text), f"secret-looking literal matching {pat}"
    sensitive = re.compile(r"secret|password|passwd|token|kube_?config|private|jwt|client_?id",
                           re.I)

    def check(mapping, where):
        for k, v in (mapping or {}).items():
            if sensitive.search(k):
                assert isinstance(v, str) and re.fullmatch(r"\$\{\{\s*secrets\.\w+.*\}\}", v), \
                    f"{where}: {k} is not taken from secrets: {v!r}"

    check(wf.get("env"), "workflow env")
    for name, j in jobs(wf).items():
        check(j.get("env"), f"{name} env")
        for s in j.get("steps", []):
            check(s.get("env"), f"{name} step env")
            check({k: v for k, v in (s.get("with") or {}).items() if k != "username"},
                  f"{name} step with")


# ---------------------------------------------------------------------------------------------
# build: matrix, actions and the tags the meta step really computes

def _default_port(svc):
    """The port the service listens on without PORT, from its configuration table (main.c)."""
    src = (ROOT / svc / "src" / "main.c").read_text()
    m = re.search(r'SVC_COMMON_PARAMS\([^)]*"(\d+)"\)', src)
    assert m, f"{svc}/src/main.c: no default port in SVC_COMMON_PARAMS"
    return int(m.group(1))


def test_build_matrix_and_actions(wf):
    b = jobs(wf)["build"]
    matrix = b["strategy"]["matrix"]
    assert set(matrix) == {"include"}, matrix
    # One leg per service, each with the default port of its configuration table.
    assert [leg["service"] for leg in matrix["include"]] == SERVICES
    for leg in matrix["include"]:
        assert set(leg) == {"service", "port"}, leg
        assert leg["port"] == _default_port(leg["service"]), leg
    # One Dockerfile, told which service to build by its build arguments.
    dockerfile = (ROOT / "Dockerfile").read_text()
    for arg in ("SERVICE", "PORT"):
        assert re.search(rf"^ARG {arg}$", dockerfile, re.M), f"Dockerfile declares no ARG {arg}"
    bp = step_using(wf, "build", "docker/build-push-action")["with"]
    assert bp["context"] == "."
    assert bp["file"] == "Dockerfile"
    build_args = dict(line.split("=", 1) for line in bp["build-args"].splitlines() if line)
    assert build_args == {"SERVICE": "${{ matrix.service }}", "PORT": "${{ matrix.port }}"}, \
        build_args
    assert bp["push"] is True
    assert bp["tags"] == "${{ steps.meta.outputs.tags }}"
    login = step_using(wf, "build", "docker/login-action")["with"]
    assert login["registry"] == "${{ env.REGISTRY }}"
    assert "secrets.GITHUB_TOKEN" in login["password"]
    assert "ghcr.io" in wf["env"]["REGISTRY"]
    names = [s.get("uses", "").split("@")[0] for s in steps(wf, "build")]
    assert names.index("docker/setup-buildx-action") < names.index("docker/build-push-action")
    assert names.index("docker/login-action") < names.index("docker/build-push-action")


def _outputs(path):
    out, lines, i = {}, path.read_text().splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and "=" not in line.split("<<")[0]:
            key, delim = line.split("<<", 1)
            i += 1
            vals = []
            while lines[i] != delim:
                vals.append(lines[i])
                i += 1
            out[key] = vals
        else:
            k, _, v = line.partition("=")
            out[k] = v
        i += 1
    return out


def test_build_tags_latest_date_and_sha(wf, tmp_path):
    meta = step(wf, "build", lambda s: s.get("id") == "meta")
    idx = steps(wf, "build").index(meta)
    bp_idx = [k for k, s in enumerate(steps(wf, "build"))
              if s.get("uses", "").startswith("docker/build-push-action@")][0]
    assert idx < bp_idx
    # A repository whose HEAD was committed 2026-03-04 23:30 at +02:00 = 21:30 UTC.
    repo = tmp_path / "repo"
    repo.mkdir()
    genv = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
            "GIT_AUTHOR_DATE": "2026-03-04T23:30:00+02:00",
            "GIT_COMMITTER_DATE": "2026-03-04T23:30:00+02:00",
            "HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    for cmd in (["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(cmd, cwd=repo, env=genv, check=True, capture_output=True)
    out = tmp_path / "out"
    for svc in SERVICES:
        out.write_text("")
        env = {"REGISTRY": "ghcr.io", "IMAGE_PREFIX": "AcMe-Corp", "SERVICE": svc,
               "GITHUB_SHA": SHA, "GITHUB_OUTPUT": str(out), "TZ": "Pacific/Auckland",
               "HOME": str(tmp_path)}
        for k, v in (meta.get("env") or {}).items():
            assert k in env, f"meta step env {k} not provided by the test"
            assert v == "${{ matrix.service }}", (k, v)
        r = run_step(meta["run"], env, repo)
        assert r.returncode == 0, r.stderr
        o = _outputs(out)
        image = f"ghcr.io/acme-corp/meeting-rooms-{svc}"
        assert o["tags"] == [f"{image}:latest", f"{image}:20260304-2130", f"{image}:{SHA}"], o


# ---------------------------------------------------------------------------------------------
# deploy: environment, kubeconfig, helm and rollout, run against stubs

def test_deploy_environment(wf):
    d = jobs(wf)["deploy"]
    assert expr_value(d["environment"], "push", {}) == "development"
    for e in ENVIRONMENTS:
        assert expr_value(d["environment"], "workflow_dispatch", {"environment": e}) == e
    assert d["env"]["DEPLOY_ENV"] == d["environment"]
    names = [s.get("uses", "").split("@")[0] for s in steps(wf, "deploy")]
    assert "actions/checkout" in names and "azure/setup-helm" in names


def test_deploy_kubeconfig_from_secret(wf, tmp_path):
    s = step(wf, "deploy", lambda s: "KUBE_CONFIG" in (s.get("env") or {}))
    assert s["env"]["KUBE_CONFIG"] == "${{ secrets.KUBE_CONFIG }}"
    conf = "apiVersion: v1\nkind: Config\nclusters: []\n"
    genv = tmp_path / "github_env"
    genv.write_text("")
    r = run_step(s["run"], {"KUBE_CONFIG": base64.b64encode(conf.encode()).decode(),
                            "HOME": str(tmp_path), "GITHUB_ENV": str(genv)}, tmp_path)
    assert r.returncode == 0, r.stderr
    kc = tmp_path / ".kube" / "config"
    assert kc.read_text() == conf
    assert stat.S_IMODE(kc.stat().st_mode) & 0o077 == 0, "kubeconfig readable by others"
    assert f"KUBECONFIG={kc}" in genv.read_text().splitlines()
    r = run_step(s["run"], {"KUBE_CONFIG": "", "HOME": str(tmp_path / "h2"),
                            "GITHUB_ENV": str(genv)}, tmp_path)
    assert r.returncode != 0, "an empty KUBE_CONFIG must fail the job"


SECRET_VALUES = {
    "JWT_SECRET_KEY": "k3y,with=commas\\and{braces}-0123456789abcdef",
    "GOOGLE_CLIENT_ID": "1234-abc.apps.googleusercontent.com",
    "GOOGLE_CLIENT_SECRET": "GOCSPX-a,b=c",
    "POSTGRES_PASSWORD": "pg-user.pw_1",
    "POSTGRES_ADMIN_PASSWORD": "pg-admin.pw_2",
}


def _helm_args(wf, stubs, env_name, tmp_path):
    bin_dir, _log, calls = stubs
    s = step_running(wf, "deploy", "helm upgrade")
    for k, v in (s.get("env") or {}).items():
        assert v == f"${{{{ secrets.{k} }}}}", f"helm step env {k}={v!r}"
        assert k in SECRET_VALUES, f"helm step env {k}: add a test value"
    env = {"DEPLOY_ENV": env_name, "GITHUB_SHA": SHA, "REGISTRY": "ghcr.io",
           "IMAGE_PREFIX": "AcMe", "STUB_LOG": str(_log), "HOME": str(tmp_path)}
    env.update({k: SECRET_VALUES[k] for k in (s.get("env") or {})})
    r = run_step(s["run"], env, ROOT, path_prefix=str(bin_dir))
    assert r.returncode == 0, r.stderr
    helm_calls = [c for c in calls() if c[0] == "helm"]
    assert len(helm_calls) == 1, helm_calls
    return helm_calls[0][1:]


def _pairs(args, flag):
    return dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == flag)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_deploy_helm_upgrade_install(wf, stubs, env_name, tmp_path):
    args = _helm_args(wf, stubs, env_name, tmp_path)
    assert args[:4] == ["upgrade", "--install", "meeting-rooms", "helm/meeting-rooms"], args
    values = args[args.index("-f") + 1]
    assert values == f"helm/meeting-rooms/values-{env_name}.yaml"
    assert args[args.index("--namespace") + 1] == f"meeting-rooms-{env_name}"
    assert "--create-namespace" in args and "--wait" in args
    assert args[args.index("--timeout") + 1] == "10m"
    sets = _pairs(args, "--set")
    assert sets == {"image.tag": SHA, "image.registry": "ghcr.io/acme"}, sets
    secrets = {**_pairs(args, "--set-literal"), **_pairs(args, "--set-string"),
               **{k: v for k, v in sets.items() if k not in ("image.tag", "image.registry")}}
    assert secrets["secrets.jwtSecretKey"] == SECRET_VALUES["JWT_SECRET_KEY"]
    assert secrets["secrets.googleClientId"] == SECRET_VALUES["GOOGLE_CLIENT_ID"]
    assert secrets["secrets.googleClientSecret"] == SECRET_VALUES["GOOGLE_CLIENT_SECRET"]
    assert secrets["postgresql.auth.password"] == SECRET_VALUES["POSTGRES_PASSWORD"]


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_deploy_helm_args_render_the_chart(wf, stubs, env_name, tmp_path, helm_bin, helm_env):
    """The same arguments, given to `helm template`, render the real chart with the SHA-tagged
    images from the registry the build job pushed to, and the secrets taken verbatim."""
    args = _helm_args(wf, stubs, env_name, tmp_path)
    tpl = ["template"] + args[2:4]
    rest, i = args[4:], 0
    while i < len(rest):
        a = rest[i]
        if a in ("--wait", "--create-namespace", "--atomic"):
            i += 1
        elif a == "--timeout":
            i += 2
        else:
            tpl.append(a)
            i += 1
    kube = str(step_using(wf, "deploy", "azure/setup-kubectl")["with"]["version"]).lstrip("v")
    r = subprocess.run([helm_bin, *tpl, "--kube-version", kube], cwd=ROOT, env=helm_env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"helm {' '.join(tpl)}:\n{r.stderr}"
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    images = {c["image"] for d in docs if d.get("kind") == "Deployment"
              for c in d["spec"]["template"]["spec"]["containers"]}
    for svc in SERVICES:
        assert f"ghcr.io/acme/meeting-rooms-{svc}:{SHA}" in images, images
    secret_values = {base64.b64decode(v).decode() for d in docs if d.get("kind") == "Secret"
                     for v in (d.get("data") or {}).values()}
    secret_values |= {v for d in docs if d.get("kind") == "Secret"
                      for v in (d.get("stringData") or {}).values()}
    assert SECRET_VALUES["JWT_SECRET_KEY"] in secret_values
    assert SECRET_VALUES["GOOGLE_CLIENT_SECRET"] in secret_values


def test_deploy_rollout_status(wf, stubs, tmp_path):
    bin_dir, log, calls = stubs
    s = step_running(wf, "deploy", "kubectl rollout status")
    names = [f"deployment.apps/meeting-rooms-{n}" for n in SERVICES + ["gateway"]]
    env = {"DEPLOY_ENV": "staging", "STUB_LOG": str(log), "STUB_GET": "\n".join(names) + "\n",
           "HOME": str(tmp_path)}
    r = run_step(s["run"], env, ROOT, path_prefix=str(bin_dir))
    assert r.returncode == 0, r.stderr
    kc = [c[1:] for c in calls() if c[0] == "kubectl"]
    assert kc[0][0] == "get" and "meeting-rooms-staging" in kc[0]
    rolled = [c for c in kc if c[:2] == ["rollout", "status"]]
    assert [c[2] for c in rolled] == names, rolled
    assert all("meeting-rooms-staging" in c for c in rolled), rolled
    # A failed rollout fails the step; so does a namespace without the release's deployments.
    assert run_step(s["run"], {**env, "STUB_RC": "1"}, ROOT, str(bin_dir)).returncode != 0
    assert run_step(s["run"], {**env, "STUB_GET": ""}, ROOT, str(bin_dir)).returncode != 0
