"""Offline checks of the Dockerfile and .dockerignore (no Docker engine here: static checks, plus
what can be proved with the local toolchain on the same Debian release as the images).

One Dockerfile at the repository root builds every service from the build arguments SERVICE and
PORT.  Each check below runs once per service, on the Dockerfile as Docker reads it with that
service's build arguments (variables substituted where Docker substitutes them):

- SERVICE and PORT are required, declared in each stage that uses them, after the package installs;
- two stages: builder FROM debian:bookworm, runtime FROM debian:bookworm-slim;
- the builder runs the Makefile's own target for the service, and that target builds in a scratch
  copy holding only what the builder COPYs (so the other services' sources are not needed);
- the runtime packages provide every shared library `ldd` shows for the locally built binary;
- a numeric non-root USER, ENV PORT and EXPOSE = the service's default port, a HEALTHCHECK on
  $PORT and /live, and the HEALTHCHECK command really answers 0/1 against the running binary.
"""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SERVICES = ["user-service", "room-service", "reservation-service"]
# The default ports of docs/architecture.md#services.
DOCUMENTED_PORTS = {"user-service": 5000, "room-service": 5001, "reservation-service": 5002}
RUNTIME_BASE = "debian:bookworm-slim"
BUILD_BASE = "debian:bookworm"
BUILDER_PACKAGES = {
    "build-essential", "pkg-config", "xxd", "libcivetweb-dev", "libpq-dev", "librdkafka-dev",
    "libjansson-dev", "libcurl4-openssl-dev", "libssl-dev",
}
RUNTIME_EXTRAS = {"ca-certificates", "tzdata"}  # no .so, but needed: HTTPS to Google, time zones


# ---------------------------------------------------------------------------------------------
# A small Dockerfile parser: continuation lines joined, comment lines dropped, split into stages,
# and variables substituted as Docker does for the given build arguments.

# Instructions whose arguments Docker itself substitutes ($VAR, ${VAR}, ${VAR:-word},
# ${VAR:+word}).  RUN is left to the shell at build time, which sees the same ARG/ENV values as its
# environment, so it is expanded the same way here; exec-form CMD/ENTRYPOINT/HEALTHCHECK are
# never expanded by Docker (a shell inside them expands at run time).
SUBSTITUTED = {"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME",
               "WORKDIR", "ONBUILD", "RUN"}
_VAR = re.compile(r"\$(?:\{([A-Za-z_]\w*)(?::([-+])([^}]*))?\}|([A-Za-z_]\w*))")


class Instr:
    def __init__(self, cmd, raw, args, stage, undeclared):
        self.cmd, self.raw, self.args, self.stage = cmd, raw, args, stage
        self.undeclared = undeclared  # variables used here that the stage does not declare

    def __repr__(self):
        return f"{self.cmd} {self.args}"


def _substitute(text, scope, undeclared):
    def one(m):
        name = m.group(1) or m.group(4)
        if name not in scope:
            undeclared.add(name)
        value = scope.get(name) or ""
        if m.group(2) == "-":
            return value or m.group(3)
        if m.group(2) == "+":
            return m.group(3) if value else ""
        return value
    return _VAR.sub(one, text)


def _declared(text):
    """NAME[=value] of an ARG, or the pairs of an ENV (name=value form)."""
    return [(k, v) for k, _, v in (w.partition("=") for w in shlex.split(text))]


def parse_dockerfile(path, build_args):
    """The instructions of a Dockerfile as built with `--build-arg k=v` for each of build_args."""
    instrs, buf, stage = [], "", -1
    global_args, scope = {}, {}
    lines = Path(path).read_text().splitlines()
    for raw_line in lines:
        line = raw_line.strip()
        if line.startswith("#"):
            continue  # comments (and parser directives); also dropped inside continuations
        if not line and not buf:
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            cmd, _, raw = buf.strip().partition(" ")
            cmd, raw = cmd.upper(), raw.strip()
            undeclared = set()
            args = _substitute(raw, global_args if stage < 0 or cmd == "FROM" else scope,
                               undeclared) if cmd in SUBSTITUTED else raw
            if cmd == "FROM":
                stage += 1
                scope = {}  # a stage sees only what it declares itself
            elif cmd == "ARG":
                for name, default in _declared(raw):
                    target = global_args if stage < 0 else scope
                    if name in build_args:
                        target[name] = build_args[name]
                    elif default:
                        target[name] = _substitute(default, target, undeclared)
                    else:
                        target[name] = global_args.get(name) if stage >= 0 else None
            elif cmd == "ENV":
                for name, value in _declared(args):
                    scope[name] = value
            instrs.append(Instr(cmd, raw, args, stage, undeclared))
        buf = ""
    assert not buf, f"{path}: dangling line continuation"
    return instrs


def stage_instrs(instrs, stage, cmd=None):
    return [i for i in instrs if i.stage == stage and (cmd is None or i.cmd == cmd)]


def apt_packages(run_args):
    """Package names of every `apt-get install` in one RUN (options and operators dropped)."""
    pkgs = set()
    for part in re.split(r"&&|;|\|\|", run_args):
        words = shlex.split(part)
        if "apt-get" in words and "install" in words:
            for w in words[words.index("install") + 1:]:
                if not w.startswith("-"):
                    pkgs.add(w)
    return pkgs


def stage_apt_packages(instrs, stage):
    pkgs = set()
    for i in stage_instrs(instrs, stage, "RUN"):
        pkgs |= apt_packages(i.args)
    return pkgs


def build_args(svc):
    """What CI passes for svc (tests/offline/test_workflow.py checks the workflow agrees)."""
    return {"SERVICE": svc, "PORT": str(default_port(svc))}


def default_port(svc):
    """The port the service listens on without PORT, from its configuration table (main.c)."""
    src = (ROOT / svc / "src" / "main.c").read_text()
    m = re.search(r'SVC_COMMON_PARAMS\([^)]*"(\d+)"\)', src)
    assert m, f"{svc}/src/main.c: no default port in SVC_COMMON_PARAMS"
    return int(m.group(1))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Fixtures

@pytest.fixture(scope="module")
def release_build():
    """`make` (the release build into build/bin/), as a developer runs it."""
    r = subprocess.run(["make", "-j", str(os.cpu_count() or 2)], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return ROOT / "build" / "bin"


@pytest.fixture(scope="module", params=SERVICES)
def svc(request):
    return request.param


@pytest.fixture(scope="module")
def df(svc):
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    return parse_dockerfile(DOCKERFILE, build_args(svc))


def stages(df):
    return [i for i in df if i.cmd == "FROM"]


def make_target(df, svc):
    """The `make … build/bin/<svc>` target the builder stage runs."""
    for i in stage_instrs(df, 0, "RUN"):
        for part in re.split(r"&&|;|\|\|", i.args):
            words = shlex.split(part)
            if words[:1] == ["make"]:
                for w in words[1:]:
                    if not w.startswith("-") and w.endswith(f"bin/{svc}"):
                        return w
    pytest.fail(f"Dockerfile (SERVICE={svc}): the builder stage runs no `make …bin/{svc}`")


def builder_workdir(df):
    wd = [i.args for i in stage_instrs(df, 0, "WORKDIR")]
    return wd[-1] if wd else "/"


# ---------------------------------------------------------------------------------------------
# One Dockerfile, its build arguments

def test_one_dockerfile_for_every_service():
    assert DOCKERFILE.is_file()
    for svc in SERVICES:
        assert not (ROOT / svc / "Dockerfile").exists(), f"{svc}/Dockerfile: use the root one"


def test_every_variable_is_declared_in_its_stage(df, svc):
    """A stage sees only the ARGs it declares (a global ARG too must be declared again), so a
    ${SERVICE} in a stage without `ARG SERVICE` would silently become empty."""
    for i in df:
        assert not i.undeclared, f"{i.cmd} {i.raw}: {sorted(i.undeclared)} not declared there"
    for stage in (0, 1):
        declared = {name for i in stage_instrs(df, stage, "ARG") for name, _ in _declared(i.raw)}
        assert {"SERVICE", "PORT"} <= declared, f"stage {stage} declares {declared}"


def test_build_args_come_after_the_package_installs(df, svc):
    """The apt layers do not depend on SERVICE or PORT, so the three images share them."""
    for stage in (0, 1):
        idx = [k for k, i in enumerate(df) if i.stage == stage]
        apt = [k for k in idx if df[k].cmd == "RUN" and "apt-get install" in df[k].raw]
        args = [k for k in idx if df[k].cmd == "ARG" and
                {"SERVICE", "PORT"} & {n for n, _ in _declared(df[k].raw)}]
        assert apt and args and max(apt) < min(args), f"stage {stage}: {df[idx[0]:idx[-1] + 1]}"


def _guard(df):
    """The builder's first RUN that reads the build arguments, before anything is copied."""
    first_copy = min(k for k, i in enumerate(df) if i.stage == 0 and i.cmd == "COPY")
    runs = [i for i in df[:first_copy] if i.cmd == "RUN" and "SERVICE" in i.raw]
    assert runs, "the builder does not check SERVICE/PORT before copying sources"
    return runs[0].raw


@pytest.mark.parametrize("given", [{}, {"SERVICE": "room-service"}, {"PORT": "5001"},
                                   {"SERVICE": "room-service", "PORT": "50x1"},
                                   {"SERVICE": "../etc", "PORT": "5001"}],
                         ids=["none", "no-port", "no-service", "bad-port", "bad-service"])
def test_build_fails_without_the_build_args(given):
    """`docker build .` without (or with unusable) build arguments stops at once, saying why."""
    script = _guard(parse_dockerfile(DOCKERFILE, given))
    r = subprocess.run(["sh", "-c", script], env={"PATH": "/usr/bin:/bin", **given},
                       capture_output=True, text=True)
    assert r.returncode != 0, given
    assert "--build-arg" in r.stderr, r.stderr


def test_build_args_pass_the_guard(df, svc):
    r = subprocess.run(["sh", "-c", _guard(df)], env={"PATH": "/usr/bin:/bin", **build_args(svc)},
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------------------------------------
# Stages and build

def test_multi_stage_on_bookworm(df, svc):
    froms = stages(df)
    assert len(froms) == 2, f"want a builder and a runtime stage, got {froms}"
    builder = froms[0].args.split()
    assert builder[0] == BUILD_BASE and len(builder) == 3 and builder[1].upper() == "AS", froms[0]
    assert froms[1].args.split()[0] == RUNTIME_BASE, froms[1]


def test_builder_installs_the_build_dependencies(df, svc):
    pkgs = stage_apt_packages(df, 0)
    assert BUILDER_PACKAGES <= pkgs, f"{svc}: builder misses {BUILDER_PACKAGES - pkgs}"
    # Everything the builder installs is what scripts/deps.sh gives a developer machine.
    deps = (ROOT / "scripts" / "deps.sh").read_text()
    listed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", deps.split("PACKAGES=(", 1)[1].split(")")[0]))
    assert pkgs <= listed, f"{svc}: builder installs {pkgs - listed}, not in scripts/deps.sh"


def test_builder_runs_the_makefile_target(df, svc):
    target = make_target(df, svc)
    assert target == f"build/bin/{svc}", target
    r = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f"`make -n {target}`: {r.stderr}"
    # The runtime stage copies exactly what that target produces.
    copies = [i.args.split() for i in stage_instrs(df, 1, "COPY")]
    src = f"{builder_workdir(df).rstrip('/')}/{target}"
    froms = [c for c in copies if c[0].startswith("--from=")]
    assert len(froms) == 1 and froms[0][1] == src, f"{svc}: runtime copies {froms}, want {src}"


def test_builder_context_alone_builds_the_service(df, svc, tmp_path):
    """Only what the builder COPYs, in a scratch directory: the service's make target succeeds."""
    copies = [i.args.split() for i in stage_instrs(df, 0, "COPY")]
    assert copies, f"{svc}: builder copies nothing"
    names = set()
    for c in copies:
        assert not c[0].startswith("--from"), c
        *sources, _dest = c
        for s in sources:
            assert not Path(s).is_absolute() and ".." not in Path(s).parts, s
            names.add(s.rstrip("/"))
    other = set(SERVICES) - {svc}
    assert not names & other, f"{svc}: builder copies other services {names & other}"
    for n in sorted(names):
        src = ROOT / n
        if src.is_dir():
            shutil.copytree(src, tmp_path / n, ignore=shutil.ignore_patterns("build", "*.o", "*.d"))
        else:
            shutil.copy2(src, tmp_path / n)
    target = make_target(df, svc)
    r = subprocess.run(["make", "-j", str(os.cpu_count() or 2), target], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, \
        f"scratch `make {target}` with only {sorted(names)}:\n{r.stdout}{r.stderr}"
    assert os.access(tmp_path / target, os.X_OK)


# ---------------------------------------------------------------------------------------------
# Runtime stage

_DPKG = None


def _dpkg_db():
    """{package: (installed?, depends-clauses, in the base image?)} from one dpkg-query call."""
    global _DPKG
    if _DPKG is None:
        r = subprocess.run(
            ["dpkg-query", "-W", "-f",
             "${Package}\t${db:Status-Status}\t${Depends}, ${Pre-Depends}\t"
             "${Essential}\t${Priority}\n"],
            capture_output=True, text=True, check=True)
        _DPKG = {}
        for line in r.stdout.splitlines():
            name, status, deps, ess, prio = (line.split("\t") + [""] * 5)[:5]
            clauses = [[a.strip().split()[0].split(":")[0] for a in c.split("|") if a.strip()]
                       for c in deps.split(",") if c.strip()]
            # Essential and Priority: required packages are what debian:bookworm-slim carries.
            _DPKG[name] = (status == "installed", clauses, ess == "yes" or prio == "required")
    return _DPKG


def _dpkg_owners(paths):
    """{path: owning package} for library paths (the path itself, or its resolved target), from
    one `dpkg -S` call (it prints "pkg[, pkg]: path" for each path it knows)."""
    paths = list(paths)
    cands = sorted({c for p in paths for c in (p, os.path.realpath(p))})
    r = subprocess.run(["dpkg", "-S", *cands], capture_output=True, text=True)
    owner_of = {}
    for line in r.stdout.splitlines():
        pkgs, sep, path = line.partition(": ")
        if sep and not line.startswith("diversion "):
            owner_of[path.strip()] = pkgs.split(",")[0].strip().split(":")[0]
    return {p: owner_of.get(p) or owner_of.get(os.path.realpath(p)) for p in paths}


def _closure(pkgs):
    """Every installed package the given ones depend on (Depends + Pre-Depends), transitively."""
    db = _dpkg_db()
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for alts in db.get(p, (False, [], False))[1]:
            for a in alts:
                if a in db and db[a][0]:
                    todo.append(a)
                    break
    return seen


def _base_image_packages():
    return {name for name, (inst, _, base) in _dpkg_db().items() if inst and base}


def _bookworm():
    try:
        osr = Path("/etc/os-release").read_text()
    except OSError:
        return False
    return "VERSION_CODENAME=bookworm" in osr and shutil.which("dpkg") is not None


def test_runtime_installs_only_runtime_packages(df, svc):
    pkgs = stage_apt_packages(df, 1)
    assert RUNTIME_EXTRAS <= pkgs, f"{svc}: runtime misses {RUNTIME_EXTRAS - pkgs}"
    dev = {p for p in pkgs if p.endswith("-dev") or p in {"build-essential", "gcc", "make", "curl"}}
    assert not dev, f"{svc}: build tools in the runtime image: {dev}"
    runs = " ".join(i.args for i in stage_instrs(df, 1, "RUN"))
    assert "--no-install-recommends" in runs and "rm -rf /var/lib/apt/lists" in runs


def test_runtime_packages_cover_ldd(df, svc, release_build):
    if not _bookworm():
        pytest.skip("needs Debian bookworm with dpkg to map libraries to the image's packages")
    binary = release_build / svc
    assert binary.is_file(), binary
    runtime = stage_apt_packages(df, 1)
    db = _dpkg_db()
    # Each name is a real bookworm package: installed here, or known to apt when its lists exist.
    have_lists = any(Path("/var/lib/apt/lists").glob("*_Packages*"))
    for p in sorted(runtime):
        if not (p in db and db[p][0]) and have_lists:
            r = subprocess.run(["apt-cache", "show", "--no-all-versions", p],
                               capture_output=True, text=True)
            assert r.returncode == 0 and r.stdout.strip(), f"{svc}: no Debian package {p!r}"
    # Libraries the binary names itself (NEEDED) come from a listed package (or libc6, the base).
    dyn = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn.stdout)
    assert needed, dyn.stdout
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True)
    resolved = {}
    for line in ldd.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m:
            assert m.group(2) != "not", f"{svc}: unresolved library: {line}"
            resolved[m.group(1)] = m.group(2)
    owners = _dpkg_owners(resolved.values())
    for so in needed:
        assert so in resolved, f"{svc}: {so} missing from ldd output"
        owner = owners[resolved[so]]
        assert owner in runtime | {"libc6"}, \
            f"{svc}: {so} comes from {owner}, which the runtime stage does not install"
    # Every library ldd loads (transitively) is in the closure of the runtime packages + base.
    provided = _closure(runtime) | _base_image_packages()
    missing = {}
    for so, path in resolved.items():
        owner = owners[path]
        if owner not in provided:
            missing[so] = owner
    assert not missing, f"{svc}: libraries not brought by the runtime packages: {missing}"


def test_runtime_user_is_numeric_non_root(df, svc):
    users = stage_instrs(df, 1, "USER")
    assert users, f"{svc}: no USER in the runtime stage"
    user = users[-1].args
    m = re.fullmatch(r"(\d+)(?::(\d+))?", user)
    assert m, f"{svc}: USER {user!r} is not numeric (Kubernetes runAsNonRoot needs a number)"
    assert int(m.group(1)) != 0 and (m.group(2) is None or int(m.group(2)) != 0)
    # The uid exists in the image (created by useradd in the runtime stage).
    runs = " ".join(i.args for i in stage_instrs(df, 1, "RUN"))
    assert re.search(r"useradd\b[^&;]*--uid\s+" + m.group(1) + r"\b", runs), runs
    # Nothing after USER switches back to root.
    last_user_idx = max(k for k, i in enumerate(df) if i.cmd == "USER")
    assert all(i.cmd != "RUN" for i in df[last_user_idx:]), "RUN after USER"


def test_expose_matches_default_port(df, svc):
    port = default_port(svc)
    assert port == DOCUMENTED_PORTS[svc], f"{svc}: main.c port {port} is not the documented one"
    exposes = [i.args for i in stage_instrs(df, 1, "EXPOSE")]
    assert exposes == [str(port)], f"{svc}: EXPOSE {exposes}, want {port}"
    # The image sets PORT, so the service and the HEALTHCHECK (which reads $PORT) agree on it.
    envs = dict(kv for i in stage_instrs(df, 1, "ENV") for kv in _declared(i.args))
    assert envs.get("PORT") == str(port), f"{svc}: ENV {envs}, want PORT={port}"


def test_entrypoint_is_the_binary(df, svc):
    eps = stage_instrs(df, 1, "ENTRYPOINT")
    assert len(eps) == 1, eps
    argv = json.loads(eps[0].args)  # exec form, so the service is PID 1 and gets SIGTERM
    copies = [i.args.split() for i in stage_instrs(df, 1, "COPY") if i.args.startswith("--from")]
    assert argv == [copies[0][-1]], f"{svc}: ENTRYPOINT {argv}, binary copied to {copies[0][-1]}"


def healthcheck_argv(df, svc):
    hcs = stage_instrs(df, 1, "HEALTHCHECK")
    assert len(hcs) == 1, f"{svc}: want one HEALTHCHECK, got {hcs}"
    m = re.search(r"\bCMD\s+(\[.*\])\s*$", hcs[0].args)
    assert m, f"{svc}: HEALTHCHECK must use the exec form CMD [...]: {hcs[0].args}"
    return json.loads(m.group(1))


def test_healthcheck_targets_live_on_default_port(df, svc):
    argv = healthcheck_argv(df, svc)
    cmd = " ".join(argv)
    assert "/live" in cmd, cmd
    # Exec form is not expanded by Docker: the port comes from $PORT at run time, which the
    # image sets to the default port (test_expose_matches_default_port) and `docker run -e`
    # or the chart may change; the service reads the same variable.
    assert re.search(r"/dev/tcp/127\.0\.0\.1/\$\{?PORT\b", cmd), f"{svc}: not on $PORT: {cmd}"
    # Only tools the slim image has: bash (Essential) — no curl/wget, which it does not install.
    assert argv[0] in ("bash", "/bin/bash"), argv
    pkgs = stage_apt_packages(df, 1)
    for tool in ("curl", "wget"):
        assert tool not in cmd or tool in pkgs, f"{svc}: HEALTHCHECK uses {tool}, not installed"


def test_healthcheck_command_against_the_binary(df, svc, release_build):
    """Run the HEALTHCHECK command against the real binary: 0 while it serves, non-zero after."""
    argv = healthcheck_argv(df, svc)
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PORT": str(port),
        # No database or broker here: /live answers while the process serves regardless.
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1",
        "KAFKA_BROKER_URL": "127.0.0.1:1",
        "JWT_SECRET_KEY": "k" * 40,
        "LOG_LEVEL": "error",
    }
    proc = subprocess.Popen([str(release_build / svc)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline, rc = time.time() + 15, None
        while time.time() < deadline:
            assert proc.poll() is None, f"{svc} exited: {proc.stderr.read().decode()[-2000:]}"
            rc = subprocess.run(argv, env=env, capture_output=True, timeout=10).returncode
            if rc == 0:
                break
            time.sleep(0.2)
        assert rc == 0, f"{svc}: HEALTHCHECK failed against a live service on {port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    rc = subprocess.run(argv, env=env, capture_output=True, timeout=10).returncode
    assert rc != 0, f"{svc}: HEALTHCHECK passes with nothing listening"


def test_healthcheck_command_rejects_a_failing_live(df, svc):
    """A listener answering /live with 503 is unhealthy (the status is read, not just a connect)."""
    import http.server
    import threading

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(srv.server_port)}
        rc = subprocess.run(healthcheck_argv(df, svc), env=env, capture_output=True,
                            timeout=10).returncode
    finally:
        srv.shutdown()
        srv.server_close()
    assert seen == ["/live"], seen
    assert rc != 0, f"{svc}: HEALTHCHECK passes on a 503 from /live"


# ---------------------------------------------------------------------------------------------
# .dockerignore

def _dockerignore():
    path = ROOT / ".dockerignore"
    assert path.is_file(), ".dockerignore is missing"
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _ignored(rel, patterns):
    import fnmatch
    ignored = False
    for p in patterns:
        neg = p.startswith("!")
        pat = p[1:] if neg else p
        pat = pat.strip("/")
        cands = [pat]
        if pat.startswith("**/"):
            cands.append(pat[3:])
        if any(fnmatch.fnmatchcase(rel, c) or rel.startswith(c + "/") for c in cands):
            ignored = not neg
    return ignored


def test_dockerignore_excludes_local_state():
    pats = _dockerignore()
    for rel in ["build", "build/bin/user-service", ".run", ".tools", "kafka/libs", ".git",
                "tests/oidc/node_modules", "node_modules"]:
        assert _ignored(rel, pats), f".dockerignore does not exclude {rel}"


def test_dockerignore_keeps_what_the_builders_copy():
    pats = _dockerignore()
    for svc in SERVICES:
        for i in stage_instrs(parse_dockerfile(DOCKERFILE, build_args(svc)), 0, "COPY"):
            for src in i.args.split()[:-1]:
                rel = src.rstrip("/")
                assert not _ignored(rel, pats), f".dockerignore excludes {rel}, which {svc} copies"
                for f in (ROOT / rel).rglob("*") if (ROOT / rel).is_dir() else []:
                    r = f.relative_to(ROOT).as_posix()
                    if f.is_file() and "/build/" not in r:
                        assert not _ignored(r, pats), f".dockerignore excludes {r}"
