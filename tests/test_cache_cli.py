"""`--no-cache` and `ocibuild cache prune`, through the real CLI."""

import json
import os
import time
from pathlib import Path

from tests.test_append import ocibuild


def _layer_entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "layers").glob("*")) if (cache_dir / "layers").exists() else []


def test_cache_is_used_bypassed_and_pruned(tmp_path: Path, cache_dir: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    ocibuild("append", "--to", f"oci:{tmp_path / 'out'}:1", f"{src}:/a")
    assert len(_layer_entries(cache_dir)) == 1
    (src / "b.txt").write_text("b")
    ocibuild("append", "--no-cache", "--to", f"oci:{tmp_path / 'out'}:2", f"{src}:/a")
    assert len(_layer_entries(cache_dir)) == 1  # --no-cache neither reads nor writes it
    ocibuild("append", "--to", f"oci:{tmp_path / 'out'}:3", f"{src}:/a")
    assert len(_layer_entries(cache_dir)) == 2

    deps = cache_dir / "deps"
    for name, age_days in (("old", 40), ("new", 0)):
        (deps / name).mkdir(parents=True)
        done = deps / name / "ocibuild-deps.json"
        done.write_text("{}")
        stamp = time.time() - age_days * 86400
        os.utime(done, (stamp, stamp))
    old_layer = _layer_entries(cache_dir)[0]
    stamp = time.time() - 40 * 86400
    os.utime(old_layer, (stamp, stamp))

    out = ocibuild("cache", "prune", "--older-than-days", "30").stdout
    assert "removed 1 layer entries and 1 dependency trees" in out
    assert not old_layer.exists() and (deps / "new").exists() and not (deps / "old").exists()
    out = ocibuild("cache", "prune").stdout
    assert "removed 1 layer entries and 1 dependency trees" in out
    assert _layer_entries(cache_dir) == [] and list(deps.iterdir()) == []


def test_cached_rebuild_reports_the_same_layer(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(1 << 20))
    first = json.loads(
        ocibuild("append", "--json", "--to", f"oci:{tmp_path / 'a'}:1", f"{src}:/d").stdout
    )
    again = json.loads(
        ocibuild("append", "--json", "--to", f"oci:{tmp_path / 'a'}:2", f"{src}:/d").stdout
    )
    assert first["digest"] == again["digest"]
    assert [b["outcome"] for b in again["blobs"]] == ["exists", "exists"]
