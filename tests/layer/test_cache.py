"""The layer cache: hits without reading, misses on change, atomic entries, pruning, no crashes."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ocibuild.layer import FileTreeLayer, LayerCache, LayerDigests, LayerOptions
from ocibuild.layer._cache import default_cache_dir
from ocibuild.oci._digest import Digest

A = LayerDigests("application/vnd.oci.image.layer.v1.tar+gzip", Digest.of(b"a"), Digest.of(b"A"), 1)
B = LayerDigests("application/vnd.oci.image.layer.v1.tar+gzip", Digest.of(b"b"), Digest.of(b"B"), 2)
FP = "ab" * 32


def bytes_read() -> int:
    """Bytes this process has read through read(2) and friends, from the kernel's count."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def build(layer: FileTreeLayer) -> LayerDigests:
    with layer.compressed() as stream:
        for _ in stream:
            pass
    return stream.result


def test_put_then_get(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    assert cache.get(FP) is None
    cache.put(FP, A)
    assert cache.get(FP) == A
    cache.put(FP, B)
    assert LayerCache(tmp_path).get(FP) == B
    assert [p.name for p in (tmp_path / "layers").iterdir()] == [FP + ".json"]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"[]",
        b'{"media_type": "x", "digest": "sha256:nothex", "diff_id": "sha256:00", "size": 1}',
        b'{"media_type": "x", "digest": "%s", "diff_id": "%s", "size": -1}'
        % (str(A.digest).encode(), str(A.diff_id).encode()),
        b'{"media_type": 7, "digest": "%s", "diff_id": "%s", "size": 1}'
        % (str(A.digest).encode(), str(A.diff_id).encode()),
        b"\xff\xfe",
    ],
)
def test_a_corrupt_entry_is_a_miss_and_is_replaced(tmp_path: Path, content: bytes) -> None:
    cache = LayerCache(tmp_path)
    cache.put(FP, A)
    (tmp_path / "layers" / (FP + ".json")).write_bytes(content)
    assert cache.get(FP) is None
    cache.put(FP, B)
    assert cache.get(FP) == B


def test_concurrent_writers_never_expose_half_an_entry(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    cache.put(FP, A)
    stop = threading.Event()

    def writer(digests: LayerDigests) -> None:
        other = LayerCache(tmp_path)
        while not stop.is_set():
            other.put(FP, digests)

    threads = [threading.Thread(target=writer, args=(d,)) for d in (A, B)]
    for thread in threads:
        thread.start()
    seen = set()
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            seen.add(cache.get(FP))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert seen <= {A, B} and seen
    assert [p.name for p in (tmp_path / "layers").iterdir()] == [FP + ".json"]  # no temp files


def test_prune_by_count_keeps_the_most_recently_used(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    now = time.time()
    for i in range(10):
        fp = f"{i:064x}"
        cache.put(fp, A)
        os.utime(tmp_path / "layers" / f"{fp}.json", (now - 1000 + i, now - 1000 + i))
    assert cache.get(f"{0:064x}") == A  # a hit makes it the most recently used
    assert cache.prune(max_entries=3) == 7
    kept = sorted(p.name for p in (tmp_path / "layers").iterdir())
    assert kept == sorted(f"{i:064x}.json" for i in (0, 8, 9))


def test_prune_by_age_and_stale_temporary_files(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    cache.put("1" * 64, A)
    cache.put("2" * 64, A)
    old = time.time() - 7200
    os.utime(tmp_path / "layers" / ("1" * 64 + ".json"), (old, old))
    stale = tmp_path / "layers" / ".tmp-dead.json"
    stale.write_text("{")
    os.utime(stale, (old, old))
    fresh = tmp_path / "layers" / ".tmp-busy.json"
    fresh.write_text("{")
    assert cache.prune(older_than=3600) == 2
    assert sorted(p.name for p in (tmp_path / "layers").iterdir()) == [
        ".tmp-busy.json",
        "2" * 64 + ".json",
    ]


def test_put_keeps_the_cache_bounded(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path, max_entries=5)
    for i in range(12):
        cache.put(f"{i:064x}", A)
    assert len(list((tmp_path / "layers").iterdir())) <= 5
    assert cache.get(f"{11:064x}") == A


def test_prune_of_a_missing_cache_removes_nothing(tmp_path: Path) -> None:
    assert LayerCache(tmp_path / "never").prune(max_entries=0) == 0


def test_an_unusable_cache_dir_warns_and_builds_anyway(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = LayerCache(blocker)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"data")
    with caplog.at_level(logging.WARNING, logger="ocibuild.cache"):
        first = build(FileTreeLayer([str(tmp_path / "src")], cache=cache))
        second = build(FileTreeLayer([str(tmp_path / "src")], cache=cache))
    assert first == second
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "OCIBUILD_CACHE_DIR" in warnings[0].getMessage()
    assert cache.get(FP) is None


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OCIBUILD_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    assert LayerCache().root == tmp_path / "explicit"
    monkeypatch.delenv("OCIBUILD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "ocibuild"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "ocibuild"


def make_src(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "big.bin").write_bytes(os.urandom(16 << 20))
    (root / "pkg" / "a.py").write_text("print('a')\n")
    return root


def test_a_hit_answers_without_reading_any_file(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    cache = LayerCache(tmp_path / "cache")
    built = build(FileTreeLayer([f"{src}:/app"], cache=cache))
    fresh = FileTreeLayer([f"{src}:/app"], cache=cache)
    before = bytes_read()
    assert fresh.known() == built
    assert bytes_read() - before < 1 << 20  # a stat walk and one small JSON file, not 16 MiB
    # And the answer is the cache's: what is stored under the fingerprint is what comes back.
    planted = replace(built, size=123)
    cache.put(fresh.fingerprint(), planted)
    assert FileTreeLayer([f"{src}:/app"], cache=cache).known() == planted


def test_a_miss_reads_nothing_either(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    layer = FileTreeLayer([f"{src}:/app"], cache=LayerCache(tmp_path / "cache"))
    before = bytes_read()
    assert layer.known() is None
    assert bytes_read() - before < 1 << 20


def test_changes_miss_and_rebuilds_store_new_digests(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    cache = LayerCache(tmp_path / "cache")
    first = build(FileTreeLayer([f"{src}:/app"], cache=cache))
    # Same size, mtime put back: only ctime (and content) tell.
    target = src / "pkg" / "a.py"
    st = target.stat()
    target.write_text("print('b')\n")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = FileTreeLayer([f"{src}:/app"], cache=cache)
    assert changed.known() is None
    second = build(changed)
    assert second.diff_id != first.diff_id
    assert FileTreeLayer([f"{src}:/app"], cache=cache).known() == second


def test_touch_misses_but_rebuilds_the_same_digests(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    cache = LayerCache(tmp_path / "cache")
    first = build(FileTreeLayer([f"{src}:/app"], cache=cache))
    os.utime(src / "pkg" / "a.py")
    touched = FileTreeLayer([f"{src}:/app"], cache=cache)
    assert touched.known() is None
    assert build(touched) == first


@pytest.mark.parametrize(
    "options",
    [
        LayerOptions(compression="zstd"),
        LayerOptions(level=6),
        LayerOptions(mtime=None),
        LayerOptions(mtime=1),
        LayerOptions(keep_owner=True),
        LayerOptions(docker_media_types=True),
    ],
)
def test_options_are_part_of_the_fingerprint(tmp_path: Path, options: LayerOptions) -> None:
    src = make_src(tmp_path / "src")
    base = FileTreeLayer([f"{src}:/app"], LayerOptions(mtime=0)).fingerprint()
    assert FileTreeLayer([f"{src}:/app"], options).fingerprint() != base
    assert FileTreeLayer([f"{src}:/app"], LayerOptions(mtime=0)).fingerprint() == base


def test_destination_and_in_memory_content_are_part_of_the_fingerprint(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    base = FileTreeLayer([f"{src}:/app"]).fingerprint()
    assert FileTreeLayer([f"{src}:/srv"]).fingerprint() != base
    one = FileTreeLayer([f"{src}:/app"], extra_files={"x": (b"1", 0o644)}).fingerprint()
    two = FileTreeLayer([f"{src}:/app"], extra_files={"x": (b"2", 0o644)}).fingerprint()
    assert len({base, one, two}) == 3


def test_an_entry_whose_digest_was_changed_is_dropped_and_the_layer_rebuilt(
    tmp_path: Path,
) -> None:
    import json

    from ocibuild import Image, write

    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text("print('x')\n")
    cache = LayerCache(tmp_path / "cache")
    first = write(
        Image.scratch().append(FileTreeLayer([f"{src}:/app"], cache=cache)), f"oci:{tmp_path}/a:1"
    )
    (entry,) = (tmp_path / "cache" / "layers").iterdir()
    data = json.loads(entry.read_text())
    data["digest"] = str(Digest.of(b"some other blob"))  # damaged, or edited by hand
    entry.write_text(json.dumps(data))

    layer = FileTreeLayer([f"{src}:/app"], cache=cache)
    assert layer.known() is None  # the entry does not verify: a miss, not a wrong answer
    again = write(Image.scratch().append(layer), f"oci:{tmp_path}/b:1")
    assert again.digest == first.digest
    assert json.loads(entry.read_text())["digest"] == str(first.blobs[0].descriptor.digest)
