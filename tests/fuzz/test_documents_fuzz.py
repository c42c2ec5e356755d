"""Fuzzing the JSON documents read from registries and archives: configs, manifests, indexes.

Besides arbitrary JSON, real documents get one field replaced by a value of any type, which
is where parsers used to turn a string ``Env`` into one variable per character or fail with
a ``TypeError``. What parses must then be usable: its properties, edits and serialization
raise nothing but ``OCIBuildError`` either.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from ocibuild.oci import (
    ContainerConfig,
    Digest,
    HistoryEntry,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    parse_manifest_or_index,
)
from ocibuild.oci import _mediatypes as mt
from tests.fuzz._fuzz import FUZZ, parses_or_refuses

DIGEST = "sha256:" + "b" * 64

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

CONFIG: dict[str, Any] = {
    "created": "2024-01-01T00:00:00Z",
    "architecture": "arm64",
    "variant": "v8",
    "os": "linux",
    "config": {
        "Env": ["PATH=/bin", "A=1"],
        "Entrypoint": ["/bin/sh"],
        "Cmd": ["-c", "true"],
        "Labels": {"a": "b"},
        "ExposedPorts": {"80/tcp": {}},
        "Volumes": {"/data": {}},
        "WorkingDir": "/",
    },
    "rootfs": {"type": "layers", "diff_ids": [DIGEST]},
    "history": [{"created_by": "base", "created": "x"}, {"empty_layer": True}],
}
LAYER = {"mediaType": mt.OCI_LAYER_GZIP, "digest": DIGEST, "size": 10, "annotations": {"k": "v"}}
MANIFEST: dict[str, Any] = {
    "schemaVersion": 2,
    "mediaType": mt.OCI_MANIFEST,
    "config": {"mediaType": mt.OCI_CONFIG, "digest": DIGEST, "size": 5},
    "layers": [LAYER],
    "annotations": {"a": "b"},
}
INDEX: dict[str, Any] = {
    "schemaVersion": 2,
    "mediaType": mt.OCI_INDEX,
    "manifests": [
        {
            **LAYER,
            "mediaType": mt.OCI_MANIFEST,
            "platform": {"os": "linux", "architecture": "amd64"},
        }
    ],
}


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in ``doc`` a value can be put."""
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += paths(value, (*prefix, index))
    return found


@st.composite
def damaged(draw: st.DrawFn, doc: dict[str, Any]) -> bytes:
    copy = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(copy) or [("x",)]))
        target = copy
        try:
            for step in where[:-1]:
                target = target[step]
            target[where[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier replacement removed this place
    return json.dumps(copy).encode()


def documents(doc: dict[str, Any]) -> st.SearchStrategy[bytes]:
    return damaged(doc) | json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=64)


def use_config(config: ImageConfig) -> None:
    _ = config.platform, config.diff_ids, config.history, config.env, config.container
    edited = config.with_layers([Digest.of(b"x")], [HistoryEntry(created_by="fuzz")])
    edited = edited.with_container(
        ContainerConfig(env={"B": "2"}, labels={"c": "d"}, exposed_ports=["8080"], volumes=["/v"])
    )
    edited = edited.with_platform(Platform("linux", "amd64")).with_created("now")
    assert ImageConfig.from_json(edited.to_json()).raw == edited.raw


@FUZZ
@given(data=documents(CONFIG))
@example(data=json.dumps({**CONFIG, "config": {"Env": "PATH=/bin"}}).encode())  # per character
@example(data=json.dumps({**CONFIG, "history": "by hand"}).encode())
@example(data=json.dumps({**CONFIG, "rootfs": {"diff_ids": [1]}}).encode())
@example(data=json.dumps({**CONFIG, "rootfs": None, "history": None}).encode())  # TypeError
def test_image_configs(data: bytes) -> None:
    parsed = parses_or_refuses(lambda: ImageConfig.from_json(data))
    if isinstance(parsed, ImageConfig):
        parses_or_refuses(lambda: use_config(parsed))


def use_manifest(manifest: Manifest) -> None:
    again = Manifest.from_json(manifest.to_json())
    assert again.to_json() == manifest.to_json()
    _ = manifest.with_annotations({"x": "y"}).is_docker


@FUZZ
@given(data=documents(MANIFEST))
@example(data=json.dumps({**MANIFEST, "layers": ["x"]}).encode())
@example(data=json.dumps({**MANIFEST, "config": "x"}).encode())
@example(data=json.dumps({**MANIFEST, "layers": [{**LAYER, "size": 10**18}]}).encode())
def test_manifests(data: bytes) -> None:
    parsed = parses_or_refuses(lambda: Manifest.from_json(data))
    if isinstance(parsed, Manifest):
        parses_or_refuses(lambda: use_manifest(parsed))
    parses_or_refuses(lambda: parse_manifest_or_index(data))


def use_index(index: Index) -> None:
    assert Index.from_json(index.to_json()).to_json() == index.to_json()
    _ = index.images
    index.select(Platform("linux", "amd64"))


@FUZZ
@given(data=documents(INDEX))
@example(data=json.dumps({**INDEX, "manifests": ["x"]}).encode())
@example(data=json.dumps({**INDEX, "manifests": [{**LAYER, "size": -1}]}).encode())
@example(data=b'{"schemaVersion": 2, "manifests": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
def test_indexes(data: bytes) -> None:
    parsed = parses_or_refuses(lambda: Index.from_json(data))
    if isinstance(parsed, Index):
        parses_or_refuses(lambda: use_index(parsed))
    parses_or_refuses(lambda: parse_manifest_or_index(data))
