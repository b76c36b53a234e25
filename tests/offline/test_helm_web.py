"""Offline checks of the web app in the Helm chart: files/web is web/ (a link Helm follows), every
file reaches the gateway byte for byte through the immutable ConfigMap
<release>-gateway-web-<version>, index.html and gateway.conf name the same version (the one
scripts/nginx.sh computes for `make run`), the files are mounted read-only where gateway.conf
serves them from, a change of web/ rolls the gateway's pods onto a new ConfigMap (the old pods
keep theirs), web/ holds no symbolic link and stays below the ConfigMap's size limit."""

import base64
import os
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
WEB_MAX_BYTES = 900 * 1024  # mr.webMaxBytes: base64 the ConfigMap may hold


def web_files(web=WEB):
    return {p.relative_to(web).as_posix(): p.read_bytes() for p in web.rglob("*") if p.is_file()}


def web_configmap(render, version=None):
    return render.get("ConfigMap", f"{RELEASE}-gateway-web-{version or web_version()}")


def render_copy(helm_bin, helm_env, chart):
    """helm template of a copy of the chart."""
    args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE, "--kube-version",
            KUBE_VERSION]
    for k, v in SECRETS.items():
        args += ["--set-string", f"{k}={v}"]
    return Render(subprocess.run([helm_bin, *args], capture_output=True, text=True,
                                 env=helm_env, timeout=120))


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
        assert volumes["web"]["configMap"]["name"] == f"{RELEASE}-gateway-web-{version}"
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
    changed = render_copy(helm_bin, helm_env, chart)
    assert changed.returncode == 0, changed.stderr
    before, _ = gateway(rendered(variants, "default"))
    after, _ = gateway(changed)
    old_ann = before["spec"]["template"]["metadata"]["annotations"]
    new_ann = after["spec"]["template"]["metadata"]["annotations"]
    assert new_ann["checksum/web"] != old_ann["checksum/web"]
    assert new_ann["checksum/config"] != old_ann["checksum/config"]
    conf = changed.get("ConfigMap", f"{RELEASE}-gateway")["data"]["gateway.conf"]
    assert f"location ^~ /assets/{new_version}/ {{" in conf
    index = base64.b64decode(web_configmap(changed, new_version)["binaryData"]["index.html"])
    assert f"/assets/{new_version}/" in index.decode()
    # Another ConfigMap, which the new pods mount; the old one is no longer in the release.
    volumes = {v["name"]: v for v in after["spec"]["template"]["spec"]["volumes"]}
    assert volumes["web"]["configMap"]["name"] == f"{RELEASE}-gateway-web-{new_version}"
    names = [o["metadata"]["name"] for o in changed.docs if o and o["kind"] == "ConfigMap"]
    assert f"{RELEASE}-gateway-web-{web_version()}" not in names


def test_the_web_configmap_is_immutable_and_named_after_its_version(variants):
    """Updated in place, a ConfigMap reaches the old pods' mounts while their nginx still serves
    the old version's path: new bytes under an immutable, year-long cached URL (review 16a M1).
    One per version, immutable, keeps every pod on its own files."""
    version = web_version()
    for variant in ("default", "production"):
        r = rendered(variants, variant)
        webs = [o for o in r.docs if o and o["kind"] == "ConfigMap"
                and o["metadata"]["name"].startswith(f"{RELEASE}-gateway-web")]
        assert [o["metadata"]["name"] for o in webs] == [f"{RELEASE}-gateway-web-{version}"]
        assert webs[0]["immutable"] is True


def test_web_fits_the_configmap(variants):
    """The API server refuses an object above 1 MiB; the chart refuses above 900 KiB of base64.
    Fails when web/ grows past it (today's app: see the figure in the message)."""
    cm = web_configmap(rendered(variants, "default"))
    total = sum(len(v) for v in cm["binaryData"].values())
    assert total <= WEB_MAX_BYTES, f"web/ takes {total} bytes of base64, limit {WEB_MAX_BYTES}"
    assert str(WEB_MAX_BYTES) in (CHART / "templates" / "_helpers.tpl").read_text()


def test_a_web_app_too_large_for_the_configmap_is_refused(helm_bin, helm_env, tmp_path,
                                                          variants):
    chart = tmp_path / "meeting-rooms"
    shutil.copytree(CHART, chart, symlinks=False)
    shipped = web_configmap(rendered(variants, "default"))["binaryData"]
    room = WEB_MAX_BYTES - sum(len(v) for v in shipped.values())
    assert room > 0
    # Just fits, then one base64 quantum (3 bytes -> 4) too many.
    blob = chart / "files" / "web" / "assets" / "blob.bin"
    blob.write_bytes(os.urandom(room // 4 * 3))
    assert render_copy(helm_bin, helm_env, chart).returncode == 0
    blob.write_bytes(os.urandom(room // 4 * 3 + 3))
    r = render_copy(helm_bin, helm_env, chart)
    assert r.returncode != 0
    assert "more than 921600" in r.stderr and "1 MiB" in r.stderr, r.stderr


def test_web_holds_no_symbolic_link():
    """Helm follows a link, scripts/nginx.sh's hash does not (and nginx would follow it out of
    web/): there must be none, and nginx.sh refuses to ship one."""
    assert [p for p in WEB.rglob("*") if p.is_symlink()] == []


def test_nginx_sh_refuses_a_symbolic_link_in_web(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", root / "scripts")
    shutil.copytree(WEB, root / "web")
    (root / "web" / "assets" / "outside.txt").symlink_to("/etc/hostname")
    out = subprocess.run([str(root / "scripts" / "nginx.sh"), "web-version"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and out.stdout == ""
    assert "symbolic links" in out.stderr and "assets/outside.txt" in out.stderr, out.stderr
