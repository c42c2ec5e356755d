"""``$OCIBUILD_REPO``: where ``ocibuild run`` pushes when neither --to nor --registry says.

Precedence: ``--to REF``, then ``--registry HOST[/NAMESPACE]``, then ``$OCIBUILD_REPO``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.pipeline._support import ocibuild_cli
from tests.pipeline.test_seed import no_kube_env
from tests.support import BaseInRegistry, Registry


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text("print('trained')\n")
    return root


def _run(project: Path, env: dict[str, str], base: str, *flags: str) -> tuple[int, str, str]:
    proc = ocibuild_cli("run", "train.py", "--base", base, *flags, env=env, cwd=project)
    return proc.returncode, proc.stdout.strip(), proc.stderr


def test_run_pushes_under_the_env_repo_and_flags_win(
    project: Path, tmp_path: Path, registry: Registry, base_in_registry: BaseInRegistry
) -> None:
    env = {**no_kube_env(tmp_path), "OCIBUILD_REPO": f"{registry.host}/from-env/"}
    base = base_in_registry.oci

    # No cluster: the run fails after the push, and stdout names what was pushed.
    status, pushed, _ = _run(project, env, base)
    assert status == 1
    assert re.fullmatch(rf"{re.escape(registry.host)}/from-env/ocibuild-job:\w+@sha256:\w+", pushed)

    status, pushed, _ = _run(project, env, base, "--registry", f"{registry.host}/from-flag")
    assert status == 1 and pushed.startswith(f"{registry.host}/from-flag/ocibuild-job:"), pushed

    status, pushed, _ = _run(project, env, base, "--to", f"{registry.host}/exact:1")
    assert status == 1 and pushed.startswith(f"{registry.host}/exact:1@sha256:"), pushed


def test_run_without_any_target_is_a_usage_error(project: Path, tmp_path: Path) -> None:
    env = no_kube_env(tmp_path)
    env.pop("OCIBUILD_REPO", None)
    status, _, stderr = _run(project, env, "scratch")
    assert status == 2
    assert "--to REF, --registry HOST[/NAMESPACE], or set $OCIBUILD_REPO" in stderr
