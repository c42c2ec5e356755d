"""The seed example, Fairing code with only its import changed, runs as a Job end to end.

No deployer is named, so ``config.run()`` uses ``job``: it builds and pushes the image to the
test registry, creates the Job in the kubeconfig context's namespace, streams the pod's log,
returns once the Job is Complete, and leaves nothing behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kube.test_job import context_namespace
from tests.pipeline._support import child_env
from tests.pipeline.test_seed import SEED
from tests.support import BaseInRegistry, KubeCluster, Registry

pytestmark = pytest.mark.xdist_group("kube")


def test_the_seed_example_runs_as_a_job(
    tmp_path: Path,
    base_in_registry: BaseInRegistry,
    registry: Registry,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "labels.csv").write_text("a,b\n1,2\n")
    (project / "train.py").write_text(
        SEED.format(base=base_in_registry.oci, registry=f"{registry.host}/team")
    )
    kube_cluster.serve_log_lines(kube_namespace, ["training with 0+runtime in /app"], tmp_path)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(context_namespace(kube_cluster.kubeconfig.read_text(), kube_namespace))
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run(
        [sys.executable, "train.py"],
        cwd=project,
        env=child_env(
            HOME=str(home), KUBECONFIG=str(kubeconfig), OCIBUILD_CACHE_DIR=str(tmp_path / "c")
        ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # The pod's log reached the caller, through the API server.
    assert proc.stdout.splitlines() == ["training with 0+runtime in /app"]
    # Nothing is left behind in the namespace.
    jobs = json.loads(kube_cluster.kubectl("get", "jobs,pods", "-n", kube_namespace, "-o", "json"))
    assert jobs["items"] == []
    # The Job controller made the pod of a Job named after the image, and saw it complete.
    events = json.loads(kube_cluster.kubectl("get", "events", "-n", kube_namespace, "-o", "json"))
    seen = {
        (e["reason"], e["involvedObject"]["kind"])
        for e in events["items"]
        if e["involvedObject"]["name"].startswith("seed-job-")
    }
    assert {("SuccessfulCreate", "Job"), ("Completed", "Job")} <= seen, seen
