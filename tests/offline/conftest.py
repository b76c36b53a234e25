"""Shared fixtures of the offline checks (Helm chart, workflow, Dockerfiles).

A session fixture runs tests/offline/tools.sh once, which installs the pinned tools into
<repo>/.tools (quick no-op when they are there): helm, actionlint and a venv with
kubernetes-validate.  Tests get the paths through the fixtures below.
"""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
TOOLS_SH = Path(__file__).resolve().parent / "tools.sh"


@pytest.fixture(scope="session", autouse=True)
def offline_tools():
    """Installs (or confirms) the pinned tools; returns their paths."""
    proc = subprocess.run(["bash", str(TOOLS_SH)], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"tests/offline/tools.sh failed (exit {proc.returncode}):\n"
                    f"{proc.stdout}\n{proc.stderr}", pytrace=False)
    tools = {
        "helm": TOOLS / "bin" / "helm",
        "actionlint": TOOLS / "bin" / "actionlint",
        "kubernetes-validate": TOOLS / "venv" / "bin" / "kubernetes-validate",
    }
    for name, path in tools.items():
        if not os.access(path, os.X_OK):
            pytest.fail(f"tools.sh ran but {name} is missing at {path}", pytrace=False)
    return tools


@pytest.fixture(scope="session")
def repo_root():
    return ROOT


@pytest.fixture(scope="session")
def helm_bin(offline_tools):
    return str(offline_tools["helm"])


@pytest.fixture(scope="session")
def actionlint_bin(offline_tools):
    return str(offline_tools["actionlint"])


@pytest.fixture(scope="session")
def kubernetes_validate_bin(offline_tools):
    return str(offline_tools["kubernetes-validate"])


@pytest.fixture(scope="session")
def helm_env(tmp_path_factory):
    """Environment for helm: its cache/config/data in a private directory, never ~/."""
    home = tmp_path_factory.mktemp("helm-home")
    env = dict(os.environ)
    env.update({
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    })
    return env
