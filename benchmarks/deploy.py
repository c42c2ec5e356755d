"""Deploy benchmark: ``python -m benchmarks.deploy [--quick] [--repeat N] [--tools ...]
[--workloads job,trainjob,pytorchjob,tfjob]``.

The seed example (``set_preprocessor("python", input_files=["main.py"])``, ``set_builder(
"append", base_image=..., registry=..., push=True)``, ``set_deployer("job", namespace=...,
labels=...)``, ``config.run()``) on a local control plane, ocibuild and Kubeflow Fairing 1.0.2
side by side. Seconds from ``config.run()`` to the Job created, to its first pod Running, to the
Job Complete, and to ``run()`` returning; and the API requests each tool made.

One kwok cluster (``tests.support``'s test bed, audit log on) and one local registry holding the
base image serve the whole run. Each tool first runs once untimed (the registry then holds its
layers: "warm"; its venv has its .pyc files), then ``--repeat`` timed rounds, each in a fresh
namespace whose pods are labelled ``ocibuild.test/scenario=slow`` (Running for 3 s, then
Succeeded) and serve a two-line log.

Besides the Job (``job``), ``--workloads`` takes ``trainjob`` (2 nodes, through the real Trainer v2
and JobSet controllers; ocibuild only, Fairing has no TrainJob), ``pytorchjob`` (Master + Worker)
and ``tfjob`` (2 Workers) through the real Training Operator v1: those install the test bed's
Kubeflow controllers on the cluster (``OCIBUILD_KUBEFLOW_DIR``). Fairing's v1 deployers follow
logs by labels the operator no longer sets (``pytorch-job-name``, ``tf-job-name``), so they would
wait forever: they run with ``stream_log=False`` and return once the job is created, while
ocibuild's follow every pod's log to the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support import SCENARIO_LABEL, Scenario

from .baseimage import ensure_base
from .fairing import install_hint, install_venv
from .kube import WATCHER_AGENT, WORKLOADS, AuditedCluster, Watcher, audited_cluster, end_log
from .measure import BenchError
from .registry import Registry, start_registry
from .report import machine_info
from .run import default_cache_dir

__all__ = ["main"]

_HERE = Path(__file__).resolve().parent
DRIVER = _HERE / "deploy_driver.py"
TOOLS = ("ocibuild", "fairing")
STEPS = ("job_created", "pod_running", "all_running", "job_complete", "returned")
# Before config.run(), from the driver's start: the tool's imports (and the seed's set_ calls).
EXTRA = ("imports", "script")
ROWS = (*STEPS, *EXTRA, "requests")
_TITLES = {
    "job_created": "to workload created",
    "pod_running": "to first pod Running",
    "all_running": "to all pods Running",
    "job_complete": "to Complete/Succeeded",
    "returned": "to run() returned",
    "imports": "imports, before run()",
    "script": "script start to run() returned",
    "requests": "API requests",
}
_MAIN_PY = 'print("hello from the deploy benchmark")\n'
_LOG = "2026-01-01T00:00:00.000000000Z stdout F hello from the deploy benchmark\n" * 2
# After run() returns, how long to wait for the Complete the tool did not wait for.
_SETTLE_S = 15.0
# Each workload's deployer options, per tool (Fairing's option names where it has the kind).
_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "job": {"ocibuild": {}, "fairing": {}},
    "trainjob": {"ocibuild": {"num_nodes": 2}},
    "pytorchjob": {
        "ocibuild": {"master_count": 1, "worker_count": 1},
        "fairing": {"master_count": 1, "worker_count": 1, "stream_log": False},
    },
    "tfjob": {
        "ocibuild": {"worker_count": 2},
        "fairing": {"worker_count": 2, "stream_log": False},
    },
}


def _python(tool: str, args: argparse.Namespace) -> Path:
    if tool == "ocibuild":
        return Path(sys.executable)
    python = Path(args.fairing_venv, "bin", "python")
    if not python.exists():
        raise BenchError(
            f"the Kubeflow Fairing venv is missing at {args.fairing_venv}: create it with "
            f"{install_hint(args.fairing_venv)}, or pass --tools ocibuild"
        )
    return python


def _run_once(
    tool: str,
    args: argparse.Namespace,
    bed: AuditedCluster,
    registry: Registry,
    work: Path,
    workload: str = "job",
) -> dict[str, Any]:
    """One ``config.run()`` in a fresh namespace: the driver's times, the watcher's, requests."""
    cluster = bed.cluster
    namespace = cluster.new_namespace(f"deploy-{tool}")
    # A directory per namespace: the log reader watches the file's directory.
    logs_file = work / "logs" / namespace / "main.log"
    logs_file.parent.mkdir(parents=True)
    logs_file.write_text(_LOG)
    cluster.serve_logs(namespace, logs_file)
    # Fairing speaks plain HTTP only to hosts named localhost; ocibuild to any loopback address.
    host = registry.fairing_host if tool == "fairing" else registry.host
    argv = [
        str(_python(tool, args)),
        str(DRIVER),
        "--tool",
        tool,
        "--registry",
        host,
        "--image-name",
        f"bench/deploy-{tool}",
        "--base",
        registry.base_ref(host),
        "--src",
        str(work / "app"),
        "--namespace",
        namespace,
        "--label",
        f"{SCENARIO_LABEL}={Scenario.SLOW}",
        "--deployer",
        workload,
        *(f"--option={k}={json.dumps(v)}" for k, v in _OPTIONS[workload][tool].items()),
    ]
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        # An empty docker config: no credentials, no helpers (for both tools' registry clients).
        "DOCKER_CONFIG": str(work / "docker-config"),
        "OCIBUILD_CACHE_DIR": str(work / "ocibuild-cache"),
        "PYTHONPATH": str(_HERE.parent),
    }
    offset = bed.audit.offset()
    try:
        done = lambda: end_log(logs_file)  # noqa: E731
        with Watcher(cluster.kubeconfig, namespace, done, WORKLOADS[workload]) as watcher:
            try:
                proc = subprocess.run(
                    argv, env=env, capture_output=True, text=True, timeout=args.timeout
                )
            except subprocess.TimeoutExpired as exc:
                raise BenchError(
                    f"{tool}: config.run() had not returned after {args.timeout:g} s; the "
                    f"watcher saw {watcher.timeline.as_json()}; its stderr ends: "
                    f"{_text(exc.stderr)[-1500:]}"
                ) from None
            if proc.returncode != 0:
                raise BenchError(
                    f"{tool}: config.run() failed (exit {proc.returncode}): "
                    f"{(proc.stderr or proc.stdout).strip()[-1500:]}"
                )
            try:
                out = json.loads(proc.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError) as exc:
                raise BenchError(
                    f"{tool}: the driver printed no result: {proc.stderr[-800:]}"
                ) from exc
            watcher.wait(time.time() + _SETTLE_S, complete=True)
            timeline = watcher.timeline
        time.sleep(0.5)  # the last audit events of the tool's closing requests
        requests = bed.audit.requests_since(offset)
    finally:
        cluster.delete_namespace(namespace)
    t0 = out["t_run"]
    steps = {
        "job_created": timeline.job_created,
        "pod_running": timeline.pod_running,
        "all_running": timeline.all_running,
        "job_complete": timeline.job_complete,
        "returned": out["t_return"],
    }
    seconds = {k: None if v is None else round(v - t0, 4) for k, v in steps.items()}
    seconds["imports"] = round(t0 - out["t_start"], 4)
    seconds["script"] = round(out["t_return"] - out["t_start"], 4)
    mine = requests.get(out["user_agent"], Counter())
    # The test bed's KServe stand-in polls InferenceServices from this process, under the
    # same client user agent as the tools; no tool here reads them.
    mine = Counter({k: v for k, v in mine.items() if "inferenceservices" not in k})
    return {
        "namespace": namespace,
        "seconds": seconds,
        "requests": sum(mine.values()),
        "requests_by_kind": dict(sorted(mine.items())),
        "watcher_requests": sum(requests.get(WATCHER_AGENT, Counter()).values()),
        "other_agents": sorted(a for a in requests if a not in (out["user_agent"], WATCHER_AGENT)),
        "timeline": timeline.as_json(),
        "driver": out,
        "stdout_tail": proc.stdout.strip().splitlines()[-4:-1],
    }


def _text(data: str | bytes | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def _median(samples: Sequence[dict[str, Any]], key: str) -> float | None:
    if key == "requests":
        values = [s["requests"] for s in samples]
    else:
        values = [s["seconds"][key] for s in samples if s["seconds"][key] is not None]
    if len(values) < len(samples):
        return None  # not seen in every round: a median of the others would mislead
    return float(statistics.median(values)) if values else None


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "not seen"
    return f"{value:.0f}" if key == "requests" else f"{value:.2f} s"


def render(by_workload: dict[str, dict[str, list[dict[str, Any]]]], meta: dict[str, Any]) -> str:
    """Per workload: one table per tool (medians), then Fairing / ocibuild per column."""
    lines = [
        f"deploy: seed example, {meta['repeat']} round(s), medians; seconds from config.run() "
        "(the imports and script rows from the driver script's start)",
        "",
    ]
    for workload, results in by_workload.items():
        lines += [f"## {workload}", "", *_render_one(results)]
    return "\n".join(lines)


def _render_one(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    keys = ROWS
    lines: list[str] = []
    medians = {tool: {k: _median(s, k) for k in keys} for tool, s in results.items()}
    for tool, samples in results.items():
        lines += [f"### {tool}", "", "| | median | rounds |", "|---|---:|---|"]
        for key in keys:
            each = [s["requests"] if key == "requests" else s["seconds"][key] for s in samples]
            shown = ", ".join(
                "—" if v is None else (f"{v:.0f}" if key == "requests" else f"{v:.2f}")
                for v in each
            )
            lines.append(f"| {_TITLES[key]} | {_fmt(key, medians[tool][key])} | {shown} |")
        kinds: Counter[str] = Counter()
        for s in samples:
            kinds.update(s["requests_by_kind"])
        per_round = ", ".join(f"{k} {v / len(samples):g}" for k, v in sorted(kinds.items()))
        lines += ["", f"requests per round: {per_round}", ""]
    if len(results) == 2:
        lines += ["### Fairing / ocibuild", "", "| | ratio |", "|---|---:|"]
        for key in keys:
            o, f = medians["ocibuild"][key], medians["fairing"][key]
            ratio = f"{f / o:.2f}" if o and f is not None else "—"
            lines.append(f"| {_TITLES[key]} | {ratio} |")
        lines.append("")
    return lines


def _write(out_dir: Path, stamp: str, record: dict[str, Any], text: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = json.dumps(record, indent=2) + "\n"
    (out_dir / f"deploy-{stamp}.json").write_text(data)
    (out_dir / "deploy-latest.json").write_text(data)
    (out_dir / "deploy-latest.md").write_text(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.deploy", description=__doc__)
    p.add_argument("--quick", action="store_true", help="one round per tool")
    p.add_argument("--repeat", type=int, default=None, help="timed rounds (default 5; 1 quick)")
    p.add_argument("--tools", default="ocibuild,fairing")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="job,trainjob,...")
    p.add_argument("--timeout", type=float, default=300, help="seconds one run() may take")
    p.add_argument("--out", type=Path, default=_HERE / "results")
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--fairing-venv", type=Path, default=None)
    p.add_argument("--install-fairing", action="store_true")
    args = p.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 5)
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if unknown := set(args.workloads) - set(WORKLOADS):
        p.error(
            f"unknown --workloads {', '.join(sorted(unknown))}: choose from {', '.join(WORKLOADS)}"
        )
    if unknown := set(args.tools) - set(TOOLS):
        p.error(f"unknown --tools {', '.join(sorted(unknown))}: choose from {', '.join(TOOLS)}")
    args.cache_dir = (args.cache_dir or default_cache_dir()).resolve()
    args.fairing_venv = (args.fairing_venv or args.cache_dir / "fairing-venv").resolve()
    return args


def run(args: argparse.Namespace) -> str:
    """Start the cluster and the registry, run every tool's rounds, write the results."""
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    if "fairing" in args.tools and args.install_fairing and not args.fairing_venv.exists():
        install_venv(args.fairing_venv)
    for tool in args.tools:
        _python(tool, args)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    base = ensure_base(args.cache_dir)
    work = Path(tempfile.mkdtemp(prefix="deploy-", dir=args.cache_dir))
    (work / "app").mkdir()
    (work / "app" / "main.py").write_text(_MAIN_PY)
    (work / "docker-config").mkdir()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    record: dict[str, Any] = {
        "started": started,
        "repeat": args.repeat,
        "tools": args.tools,
        "workloads": args.workloads,
    }
    try:
        with contextlib.ExitStack() as stack:
            bed = stack.enter_context(audited_cluster(work / "kwok"))
            registry = stack.enter_context(start_registry(work))
            if set(args.workloads) - {"job"}:
                from tests.support import find_kubeflow_dir, install_kubeflow

                kubeflow_dir = find_kubeflow_dir()
                stack.enter_context(install_kubeflow(bed.cluster, kubeflow_dir, work / "kf"))
            registry.push_base(base)
            for workload in args.workloads:
                results[workload] = {}
                for tool in args.tools:
                    if tool not in _OPTIONS[workload]:
                        continue  # Fairing has no TrainJob deployer
                    print(f"{workload} {tool}: one untimed run (warms the registry)", flush=True)
                    _run_once(tool, args, bed, registry, work, workload)
                    results[workload][tool] = []
                    for rnd in range(1, args.repeat + 1):
                        sample = _run_once(tool, args, bed, registry, work, workload)
                        results[workload][tool].append(sample)
                        print(f"  [r{rnd}] {_one_line(sample)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record["machine"] = machine_info(_versions(args))
    record["machine"]["loadavg_at_end"] = os.getloadavg()
    record["samples"] = results
    text = render(results, record)
    record["medians"] = {
        w: {t: {k: _median(s, k) for k in ROWS} for t, s in by_tool.items()}
        for w, by_tool in results.items()
    }
    _write(args.out, started.replace(":", ""), record, text)
    return text


def _one_line(sample: dict[str, Any]) -> str:
    parts = [f"{_TITLES[k]} {_fmt(k, v)}" for k, v in sample["seconds"].items()]
    return ", ".join(parts) + f", {sample['requests']} requests"


def _versions(args: argparse.Namespace) -> dict[str, str]:
    versions = {}
    probe = "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))"
    for tool, dist in (
        ("ocibuild", "ocibuild"),
        ("ocibuild", "kubernetes"),
        ("fairing", "kubeflow-fairing"),
        ("fairing", "kubernetes"),
    ):
        if tool in args.tools:
            out = subprocess.run(
                [str(_python(tool, args)), "-c", probe, dist],
                capture_output=True,
                text=True,
                check=False,
            )
            versions[f"{tool}:{dist}"] = out.stdout.strip() or "unknown"
    return versions


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    try:
        print(run(args))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"results in {args.out}/deploy-latest.json, deploy-latest.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
