"""Offline checks of the web app in the Helm chart: files/web is web/ (a link Helm follows), every
file reaches the gateway byte for byte through the ConfigMap <release>-gateway-web, index.html
and gateway.conf name the same version (the one scripts/nginx.sh computes for `make run`), the
files are mounted read-only where gateway.conf serves them from, and a change of web/ rolls the
gateway's pods."""

import base64
import shutil
import subprocess

from test_helm import (  # noqa: F401 - fixtures below
    CHART,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    ROOT,
    SECRETS,
    Render,
    external_values_file,
    helm,
    rendered,
    variants,
    web_version,
)

WEB = ROOT / "web"


def web_files(web=WEB):
    return {p.relative_to(web).as_posix(): p.read_bytes() for p in web.rglob("*") if p.is_file()}


def web_configmap(render):
    return render.get("ConfigMap", f"{RELEASE}-gateway-web")


def gateway(render):
    dep = render.get("Deployment", f"{RELEASE}-gateway")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return dep, container


def test_chart_web_is_a_link_to_the_repository_web_directory():
    link = CHART / "files" / "web"
    assert link.is_symlink() and str(link.readlink()) == "../../../web"
    assert link.resolve() == WEB.resolve()
    assert (WEB / "index.html").is_file()


def test_the_three_agree_on_the_version(variants):
    """The test's own computation, scripts/nginx.sh (make run, the integration tests) and the
    chart (index.html's asset URLs, gateway.conf's location)."""
    version = web_version()
    out = subprocess.run([str(ROOT / "scripts" / "nginx.sh"), "web-version"], capture_output=True,
                         text=True, timeout=30, check=True)
    assert out.stdout.strip() == version
    r = rendered(variants, "default")
    cm = web_configmap(r)
    assert cm["metadata"]["annotations"]["meeting-rooms/web-version"] == version
    index = base64.b64decode(cm["binaryData"]["index.html"]).decode()
    assert f"/assets/{version}/" in index and "__WEB_VERSION__" not in index
    conf = r.get("ConfigMap", f"{RELEASE}-gateway")["data"]["gateway.conf"]
    assert f"location ^~ /assets/{version}/ {{" in conf
    assert "alias /usr/share/nginx/web/assets/;" in conf and "root /usr/share/nginx/web;" in conf


def test_every_web_file_is_shipped_byte_for_byte(variants):
    files = web_files()
    version = web_version()
    for variant in ("default", "production"):
        r = rendered(variants, variant)
        cm = web_configmap(r)
        assert "data" not in cm
        shipped = {k: base64.b64decode(v) for k, v in cm["binaryData"].items()}
        dep, _ = gateway(r)
        volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        items = volumes["web"]["configMap"]["items"]
        assert volumes["web"]["configMap"]["name"] == f"{RELEASE}-gateway-web"
        by_path = {i["path"]: shipped[i["key"]] for i in items}
        assert sorted(by_path) == sorted(files) and len(items) == len(shipped)
        for path, content in files.items():
            if path == "index.html":
                content = content.replace(b"__WEB_VERSION__", version.encode())
            assert by_path[path] == content, path


def test_web_files_are_mounted_read_only_where_the_gateway_serves_them(variants):
    dep, container = gateway(rendered(variants, "default"))
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["web"] == {"name": "web", "mountPath": "/usr/share/nginx/web",
                             "readOnly": True}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert len(annotations["checksum/web"]) == 64


def test_a_change_of_web_rolls_the_gateway(helm_bin, helm_env, tmp_path, variants):
    """A copy of the chart whose web/ differs in one byte of a stylesheet: another version in
    index.html and gateway.conf, other checksums on the pod template."""
    chart = tmp_path / "meeting-rooms"
    shutil.copytree(CHART, chart, symlinks=False)
    css = chart / "files" / "web" / "assets" / "style.css"
    css.write_bytes(css.read_bytes() + b"\n")
    new_version = web_version(chart / "files" / "web")
    assert new_version != web_version()
    args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE, "--kube-version",
            KUBE_VERSION]
    for k, v in SECRETS.items():
        args += ["--set-string", f"{k}={v}"]
    changed = Render(subprocess.run([helm_bin, *args], capture_output=True, text=True,
                                    env=helm_env, timeout=120))
    assert changed.returncode == 0, changed.stderr
    before, _ = gateway(rendered(variants, "default"))
    after, _ = gateway(changed)
    old_ann = before["spec"]["template"]["metadata"]["annotations"]
    new_ann = after["spec"]["template"]["metadata"]["annotations"]
    assert new_ann["checksum/web"] != old_ann["checksum/web"]
    assert new_ann["checksum/config"] != old_ann["checksum/config"]
    conf = changed.get("ConfigMap", f"{RELEASE}-gateway")["data"]["gateway.conf"]
    assert f"location ^~ /assets/{new_version}/ {{" in conf
    index = base64.b64decode(web_configmap(changed)["binaryData"]["index.html"]).decode()
    assert f"/assets/{new_version}/" in index
