"""The plot: median wall time against payload size, one line per tool, cold and warm panels.

matplotlib is optional (the nox bench session installs it); without it the plot is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .report import Key, Stat

__all__ = ["plot"]

_STYLE = {  # series -> (label, line style)
    "ocibuild-gzip": ("ocibuild gzip", "-o"),
    "ocibuild-zstd": ("ocibuild zstd", "-s"),
    "fairing": ("Fairing 1.0.2", "-^"),
    "umoci+skopeo": ("umoci repack + skopeo copy", "-v"),
    "limit-gzip": ("limit: isal gzip alone", ":x"),
    "limit-zstd": ("limit: zstd alone", ":+"),
    "limit-curl-gzip": ("limit: curl upload (gzip blob)", ":d"),
    "limit-sha256": ("limit: sha256 alone", ":."),
}


def plot(stats: dict[Key, Stat], path: Path, title: str) -> str:
    """Draw and save the PNG; return a line saying what happened."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): no plot written"
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    for ax, mode in zip(axes, ("cold", "warm"), strict=True):
        for series, (label, style) in _STYLE.items():
            want = "once" if series.startswith("limit") else mode
            points = sorted(
                (s.payload_bytes / 1e6, s.wall, p)
                for (p, name, m), s in stats.items()
                if name == series and m == want
            )
            if points:
                ax.plot([x for x, _, _ in points], [y for _, y, _ in points], style, label=label)
        if mode == "warm":
            noop = sorted(
                (s.payload_bytes / 1e6, s.wall)
                for (_, name, m), s in stats.items()
                if name == "ocibuild-gzip" and m == "noop"
            )
            if noop:
                ax.plot(*zip(*noop, strict=True), "--o", label="ocibuild no-op rebuild")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for p, size in sorted({(k[0], s.payload_bytes / 1e6) for k, s in stats.items()}):
            ax.axvline(size, color="grey", alpha=0.25, linewidth=0.8)
            ax.annotate(
                f"({p})",
                (size, 1.0),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_xlabel("payload size (MB)")
        ax.set_title(
            f"{mode}: target repository {'empty' if mode == 'cold' else 'has the base'}", pad=16
        )
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("median wall time (s)")
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=5)
    fig.suptitle(f"ocibuild vs Fairing vs umoci+skopeo ({title})")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plot written to {path}"
