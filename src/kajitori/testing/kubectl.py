"""The real ``kubectl``, run against a test cluster's kubeconfig.

Both test clusters, ``cluster.py`` (``kajitori up`` as a child process) and
``inprocess.py`` (on a thread), hand tests a ``kubectl(...)`` method; this is
the one command runner behind both, so a failure reads the same from either.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def run(
    kubeconfig: Path,
    args: Sequence[str],
    *,
    stdin: str | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """``kubectl *args`` with ``KUBECONFIG`` (and ``env``) set, output captured as text.

    With ``check``, a non-zero exit raises AssertionError carrying the command
    and its stderr, which is what a failing test should show.
    """
    full_env = {**os.environ, "KUBECONFIG": str(kubeconfig), **(env or {})}
    result = subprocess.run(
        ["kubectl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
        )
    return result
