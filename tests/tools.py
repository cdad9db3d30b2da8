"""helm and kubectl for the deployment tests, built from their Go modules on first use.

tests/controlplane/build-tools compiles them into ~/.cache/msctl-testbin (cached, keyed by
version; .ci/run builds them up front so the time shows on its own line) and prints the
folder. A build that fails fails the tests that need the tools: nothing is skipped.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "tests" / "controlplane" / "build-tools"
CHART = REPO / "deploy" / "chart" / "msctl"
# A cold build compiles helm and kubectl: ~10 minutes on 2 cores.
BUILD_TIMEOUT = 45 * 60


@functools.cache
def folder() -> Path:
    done = subprocess.run(
        [str(BUILD)], capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{BUILD} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def helm() -> str:
    return str(folder() / "helm")


def kubectl() -> str:
    return str(folder() / "kubectl")


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """helm with its own state folders (no user configuration, no repositories)."""
    home = REPO / ".pytest_cache" / "helm-home"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),  # client-go's discovery cache goes to $HOME/.kube
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    done = subprocess.run(
        [helm(), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done
