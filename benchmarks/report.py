"""Turn samples into medians, ratios, target verdicts, a markdown report, JSON and a plot."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .record import Sample

__all__ = ["Target", "machine_info", "medians", "ratios", "render", "targets", "write_results"]

Key = tuple[str, str, str]  # (payload, series, mode)
MB = 1e6


@dataclass(frozen=True)
class Stat:
    """Medians (and the peak RSS) of the samples of one (payload, series, mode)."""

    n: int
    wall: float
    cpu: float
    rss_max: float
    registry_cpu: float | None
    payload_bytes: int
    blob_bytes: int | None


def medians(samples: Iterable[Sample]) -> dict[Key, Stat]:
    """Group samples by (payload, series, mode) and take medians."""
    groups: dict[Key, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[(s.payload, s.series, s.mode)].append(s)
    out = {}
    for key, group in groups.items():
        reg = [s.registry_cpu for s in group if s.registry_cpu is not None]
        blobs = [s.blob_bytes for s in group if s.blob_bytes is not None]
        out[key] = Stat(
            n=len(group),
            wall=statistics.median(s.wall for s in group),
            cpu=statistics.median(s.cpu for s in group),
            rss_max=max(s.max_rss_mb for s in group),
            registry_cpu=statistics.median(reg) if reg else None,
            payload_bytes=group[0].payload_bytes,
            blob_bytes=int(statistics.median(blobs)) if blobs else None,
        )
    return out


def _wall(stats: dict[Key, Stat], payload: str, series: str, mode: str) -> float | None:
    s = stats.get((payload, series, mode))
    return s.wall if s else None


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratios(stats: dict[Key, Stat]) -> list[dict[str, Any]]:
    """ocibuild / Fairing, / umoci+skopeo and / limit per payload, mode and codec (< 1: faster)."""
    rows = []
    for payload in sorted({k[0] for k in stats}):
        for mode in ("cold", "warm"):
            for codec in ("gzip", "zstd"):
                o = _wall(stats, payload, f"ocibuild-{codec}", mode)
                comp = _wall(stats, payload, f"limit-{codec}", "once")
                curl = _wall(stats, payload, f"limit-curl-{codec}", "once")
                limit = max(comp, curl) if comp is not None and curl is not None else None
                f = _wall(stats, payload, "fairing", mode)
                u = _wall(stats, payload, "umoci+skopeo", mode)
                if o is None and f is None and u is None:
                    continue
                rows.append(
                    {
                        "payload": payload,
                        "mode": mode,
                        "codec": codec,
                        "ocibuild": o,
                        "fairing": f,
                        "umoci_skopeo": u,
                        "compress_only": comp,
                        "curl_upload": curl,
                        "limit": limit,
                        "vs_fairing": _div(o, f),
                        "vs_umoci_skopeo": _div(o, u),
                        "vs_limit": _div(o, limit),
                    }
                )
    return rows


@dataclass(frozen=True)
class Target:
    """One target of the issue, and whether this run met it."""

    name: str
    measured: str
    status: str  # "met", "NOT met", "not measured"

    def as_json(self) -> dict[str, str]:
        """A plain dict."""
        return {"target": self.name, "measured": self.measured, "status": self.status}


def _verdict(name: str, value: float | None, ok: bool, shown: str) -> Target:
    if value is None:
        return Target(name, "—", "not measured")
    return Target(name, shown, "met" if ok else "NOT met")


def targets(stats: dict[Key, Stat], samples: Sequence[Sample]) -> list[Target]:
    """Judge every target of the issue on this run's medians."""
    out = []
    row = {(r["payload"], r["mode"], r["codec"]): r for r in ratios(stats)}
    for p in ("b", "c"):
        r = row.get((p, "warm", "gzip"), {})
        speedup = _div(r.get("fairing"), r.get("ocibuild"))
        out.append(
            _verdict(
                f"({p}) warm gzip >= 10x faster than Fairing",
                speedup,
                speedup is not None and speedup >= 10,
                f"{speedup or 0:.1f}x",
            )
        )
        vs_u = r.get("vs_umoci_skopeo")
        out.append(
            _verdict(
                f"({p}) warm gzip faster than umoci+skopeo",
                vs_u,
                vs_u is not None and vs_u < 1,
                f"{vs_u or 0:.2f}x the time",
            )
        )
        vs_l = r.get("vs_limit")
        out.append(
            _verdict(
                f"({p}) warm gzip within 1.5x of max(compress-only, curl upload)",
                vs_l,
                vs_l is not None and vs_l <= 1.5,
                f"{vs_l or 0:.2f}x",
            )
        )
    walls = [w for m in ("cold", "warm") if (w := _wall(stats, "a", "ocibuild-gzip", m))]
    worst = max(walls) if walls else None
    out.append(
        _verdict(
            "(a) whole `ocibuild append` process < 0.4 s (worst of cold/warm gzip medians)",
            worst,
            worst is not None and worst < 0.4,
            f"{worst or 0:.3f} s",
        )
    )
    for p in ("a", "b", "c", "d"):
        rss = [s.max_rss_mb for s in samples if s.payload == p and s.series.startswith("ocibuild")]
        peak = max(rss) if rss else None
        out.append(
            _verdict(
                f"({p}) ocibuild peak RSS < 100 MB",
                peak,
                peak is not None and peak < 100,
                f"{peak or 0:.0f} MB",
            )
        )
    for p in ("c", "d"):
        noops = [w for c in ("gzip", "zstd") if (w := _wall(stats, p, f"ocibuild-{c}", "noop"))]
        worst = max(noops) if noops else None
        out.append(
            _verdict(
                f"({p}) no-op rebuild < 0.5 s (worst codec median)",
                worst,
                worst is not None and worst < 0.5,
                f"{worst or 0:.3f} s",
            )
        )
    r = row.get(("d", "warm", "gzip"), {})
    vs_l = r.get("vs_limit")
    tar = _wall(stats, "d", "limit-tar", "once")
    out.append(
        _verdict(
            "(d) walk+tar not the bottleneck: warm gzip within 1.5x of "
            "max(compress-only, curl upload)",
            vs_l,
            vs_l is not None and vs_l <= 1.5,
            f"{vs_l or 0:.2f}x (GNU tar walk alone: {tar or 0:.2f} s)",
        )
    )
    return out


# ---------------------------------------------------------------------------------------------


def machine_info(versions: dict[str, str]) -> dict[str, Any]:
    """What ran this: cores, CPU, memory, kernel, Python and every tool's version."""
    cpu = "unknown"
    mem = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "mem_total": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
        "versions": versions,
    }


def _f(x: float | None, fmt: str = "{:.2f}") -> str:
    return "—" if x is None else fmt.format(x)


def render(stats: dict[Key, Stat], samples: Sequence[Sample], meta: dict[str, Any]) -> str:
    """The markdown report: machine, medians, ratios, targets."""
    m = meta["machine"]
    lines = [
        "# ocibuild side-by-side benchmark",
        "",
        f"{meta['started']} · {m['nproc']} cores · {m['cpu_model']} · Python {m['python']} · "
        f"repeat {meta['repeat']}{' · quick' if meta['quick'] else ''}",
        "",
        "Versions: " + "; ".join(f"{k}: {v}" for k, v in sorted(m["versions"].items())),
        "",
        "## Medians",
        "",
        "| payload | series | mode | n | wall s | CPU s | peak RSS MB | registry CPU s "
        "| payload MB/s | blob MB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = {"cold": 0, "warm": 1, "noop": 2, "once": 3}
    for (p, series, mode), s in sorted(
        stats.items(),
        key=lambda kv: (kv[0][0], kv[0][1].startswith("limit"), kv[0][1], order.get(kv[0][2], 9)),
    ):
        lines.append(
            f"| {p} | {series} | {mode} | {s.n} | {s.wall:.3f} | {s.cpu:.2f} | "
            f"{s.rss_max:.0f} | {_f(s.registry_cpu)} | {s.payload_bytes / MB / s.wall:.0f} | "
            f"{_f(None if s.blob_bytes is None else s.blob_bytes / MB, '{:.1f}')} |"
        )
    lines += [
        "",
        "## Ratios of wall time (ocibuild / other; below 1 means ocibuild is faster)",
        "",
        "| payload | mode | codec | ocibuild s | Fairing s | umoci+skopeo s | compress s "
        "| curl s | / Fairing | / umoci+skopeo | / limit |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ratios(stats):
        lines.append(
            f"| {r['payload']} | {r['mode']} | {r['codec']} | {_f(r['ocibuild'], '{:.3f}')} | "
            f"{_f(r['fairing'])} | {_f(r['umoci_skopeo'])} | {_f(r['compress_only'], '{:.3f}')} "
            f"| {_f(r['curl_upload'], '{:.3f}')} | {_f(r['vs_fairing'], '{:.3f}')} | "
            f"{_f(r['vs_umoci_skopeo'], '{:.3f}')} | {_f(r['vs_limit'], '{:.2f}')} |"
        )
    lines += ["", "## Targets", ""]
    if meta["quick"]:
        lines += [
            "The targets are set for the full payloads: on --quick ones, where process "
            "start-up dominates, these verdicts are only indicative.",
            "",
        ]
    lines += ["| target | measured | status |", "|---|---|---|"]
    lines += [f"| {t.name} | {t.measured} | {t.status} |" for t in targets(stats, samples)]
    noop = [s for s in samples if s.mode == "noop"]
    if noop:
        same = sum(bool(s.info.get("same_digest_as_warm")) for s in noop)
        lines += [
            "",
            f"No-op rebuilds that reproduced the warm manifest digest: {same}/{len(noop)}",
        ]
    return "\n".join(lines) + "\n"


def write_results(
    out_dir: Path, stamp: str, samples: Sequence[Sample], meta: dict[str, Any], final: bool = True
) -> str:
    """Write ``<stamp>.json``, ``latest.json``, ``latest.md`` and the plot; return the markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = medians(samples)
    doc = {
        **meta,
        "complete": final,
        "samples": [s.as_json() for s in samples],
        "medians": [
            {"payload": k[0], "series": k[1], "mode": k[2], **vars(v)}
            for k, v in sorted(stats.items())
        ],
        "ratios": ratios(stats),
        "targets": [t.as_json() for t in targets(stats, samples)],
    }
    text = json.dumps(doc, indent=1, default=str)
    (out_dir / f"{stamp}.json").write_text(text)
    (out_dir / "latest.json").write_text(text)
    md = render(stats, samples, meta)
    (out_dir / "latest.md").write_text(md)
    if final:
        from .plot import plot

        msg = plot(stats, out_dir / "latest.png", title=meta["started"])
        md += f"\n{msg}\n"
    return md
