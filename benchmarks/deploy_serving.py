"""The ``serving`` row of the deploy benchmark: ``python -m benchmarks.deploy_serving``.

The seed example with ``set_deployer("serving", serving_class="Model", namespace=...)``: ocibuild
waits until its Deployment is ready; Fairing 1.0.2's ``Serving`` returns once it has created
the Deployment and Service. So the time that compares is the one seen from outside: seconds
from ``config.run()`` to the Deployment available (a watch in the harness, under its own user
agent), and the API requests each tool made (the audit log). Pods carry no scenario label:
kwok runs them and makes them Ready at once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .baseimage import ensure_base
from .deploy import DRIVER, parse_args
from .kube import WATCHER_AGENT, AuditedCluster, audited_cluster
from .measure import BenchError
from .registry import Registry, start_registry

__all__ = ["main"]

_HERE = Path(__file__).resolve().parent


class AvailableWatch:
    """When the namespace's Deployment was first seen created, and first available."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        import kubernetes

        self.created: float | None = None
        self.available: float | None = None
        self._api: Any = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        self._api.user_agent = WATCHER_AGENT
        self._apps: Any = kubernetes.client.AppsV1Api(self._api)
        self._watch: Any = kubernetes.watch.Watch()
        self._namespace = namespace
        listed = self._apps.list_namespaced_deployment(namespace)
        self._version = listed.metadata.resource_version
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stream = self._watch.stream(
            self._apps.list_namespaced_deployment,
            self._namespace,
            resource_version=self._version,
            timeout_seconds=600,
        )
        for event in stream:
            now, obj = time.time(), event["object"]
            self.created = self.created or now
            wanted = obj.spec.replicas or 1
            status = obj.status
            if (status.available_replicas or 0) >= wanted and (
                status.observed_generation or 0
            ) >= obj.metadata.generation:
                self.available = self.available or now
                return

    def wait(self, timeout: float) -> None:
        self._thread.join(timeout)
        self._watch.stop()
        self._api.close()


def _run_once(
    tool: str, args: argparse.Namespace, bed: AuditedCluster, registry: Registry, work: Path
) -> dict[str, Any]:
    cluster = bed.cluster
    namespace = cluster.new_namespace(f"serving-{tool}")
    host = registry.fairing_host if tool == "fairing" else registry.host
    python = sys.executable if tool == "ocibuild" else str(args.fairing_venv / "bin" / "python")
    argv = [python, str(DRIVER), "--tool", tool, "--deployer", "serving", "--registry", host]
    argv += ["--image-name", f"bench/serving-{tool}", "--base", registry.base_ref(host)]
    argv += ["--src", str(work / "app"), "--namespace", namespace]
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "DOCKER_CONFIG": str(work / "docker-config"),
        "OCIBUILD_CACHE_DIR": str(work / "ocibuild-cache"),
        "PYTHONPATH": str(_HERE.parent),
    }
    offset = bed.audit.offset()
    try:
        watch = AvailableWatch(cluster.kubeconfig, namespace)
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=args.timeout)
        if proc.returncode != 0:
            raise BenchError(f"{tool}: config.run() failed: {proc.stderr.strip()[-1500:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        watch.wait(30)
        time.sleep(0.5)  # the last audit events of the tool's closing requests
        requests = bed.audit.requests_since(offset)
    finally:
        cluster.delete_namespace(namespace)
    t0 = out["t_run"]
    steps = {"created": watch.created, "available": watch.available, "returned": out["t_return"]}
    seconds = {k: None if v is None else round(v - t0, 4) for k, v in steps.items()}
    mine = requests.get(out["user_agent"], Counter())
    return {"seconds": seconds, "requests": sum(mine.values()), "by_kind": dict(mine), "out": out}


def render(results: dict[str, list[dict[str, Any]]]) -> str:
    """The medians per tool: seconds from config.run(), and API requests."""
    lines = [
        "| serving (medians) | to Deployment created | to available | run() returned | "
        "API requests |",
        "|---|---:|---:|---:|---:|",
    ]
    for tool, samples in results.items():
        cells = []
        for key in ("created", "available", "returned"):
            values = [s["seconds"][key] for s in samples if s["seconds"][key] is not None]
            cells.append(f"{statistics.median(values):.2f} s" if values else "not seen")
        cells.append(f"{statistics.median(s['requests'] for s in samples):.0f}")
        lines.append(f"| {tool} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point: the same options as ``benchmarks.deploy``."""
    args = parse_args(argv)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    base = ensure_base(args.cache_dir)
    work = Path(tempfile.mkdtemp(prefix="serving-", dir=args.cache_dir))
    (work / "app").mkdir()
    (work / "app" / "main.py").write_text('print("serving")\n')
    (work / "docker-config").mkdir()
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        with audited_cluster(work / "kwok") as bed, start_registry(work) as registry:
            registry.push_base(base)
            for tool in args.tools:
                _run_once(tool, args, bed, registry, work)  # untimed: warms the registry
                results[tool] = [
                    _run_once(tool, args, bed, registry, work) for _ in range(args.repeat)
                ]
                for sample in results[tool]:
                    print(f"  {tool}: {sample['seconds']}, {sample['requests']} requests")
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = render(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "deploy-serving-latest.md").write_text(text)
    (args.out / "deploy-serving-latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
