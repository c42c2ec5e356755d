"""Configs, manifests and indexes with wrongly typed fields: one line naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ocibuild._errors import ManifestError
from ocibuild.oci import ContainerConfig, ImageConfig, Index, Manifest, parse_manifest_or_index
from ocibuild.oci import _mediatypes as mt

DIGEST = "sha256:" + "a" * 64


def config(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [DIGEST]},
        "history": [{"created_by": "x"}],
    }
    for key, value in fields.items():
        target, _, sub = key.partition("__")
        if sub:
            base[target][sub] = value
        else:
            base[target] = value
    return json.dumps(base).encode()


def refused(parse: Any, data: bytes) -> str:
    with pytest.raises(ManifestError) as err:
        parse(data)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"config__Env": "PATH=/bin"}, "'Env' must be a list of strings, not a string"),
        ({"config__Env": [1, 2]}, "'Env' must be a list of strings"),
        ({"config__Labels": ["a=b"]}, "'Labels' must be an object of strings, not a list"),
        ({"config__Labels": {"a": 1}}, "'Labels' must be an object of strings"),
        ({"config__Entrypoint": "/bin/sh"}, "'Entrypoint' must be a list of strings"),
        ({"config__Cmd": {"a": 1}}, "'Cmd' must be a list of strings"),
        ({"config__WorkingDir": 5}, "'WorkingDir' must be a string, not a number"),
        ({"config__ExposedPorts": ["80/tcp"]}, "'ExposedPorts' must be an object"),
        ({"config": "Env=x"}, "field 'config' must be an object, not a string"),
        ({"history": "built by hand"}, "field 'history' must be a list of objects"),
        ({"history": ["x"]}, "field 'history' must be a list of objects"),
        ({"history": [{"empty_layer": "yes"}]}, "'history[0]' field 'empty_layer'"),
        ({"rootfs": ["layers"]}, "field 'rootfs' must be an object"),
        ({"rootfs__diff_ids": DIGEST}, "'diff_ids' must be a list of strings, not a string"),
        ({"rootfs__diff_ids": ["sha256:xyz"]}, "'diff_ids[0]'"),
        ({"rootfs__diff_ids": [{"d": 1}]}, "'diff_ids' must be a list of strings"),
        ({"os": ["linux"]}, "field 'os' must be a string"),
        ({"architecture": 64}, "field 'architecture' must be a string"),
    ],
)
def test_config_fields_of_the_wrong_type_are_refused(fields: dict[str, Any], named: str) -> None:
    assert named in refused(ImageConfig.from_json, config(**fields))


def test_nulls_are_absent_fields_as_docker_writes_them() -> None:
    parsed = ImageConfig.from_json(config(config__Env=None, config__Cmd=None, history=None))
    assert parsed.env == {}
    edited = parsed.with_container(ContainerConfig(env={"A": "1"}))
    assert edited.env == {"A": "1"}


def test_a_string_env_no_longer_becomes_one_variable_per_character() -> None:
    with pytest.raises(ManifestError, match="Env"):
        ImageConfig.from_json(config(config__Env="AB"))


def descriptor(**fields: Any) -> dict[str, Any]:
    return {"mediaType": mt.OCI_LAYER_GZIP, "digest": DIGEST, "size": 3, **fields}


def manifest(**fields: Any) -> bytes:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": descriptor(mediaType=mt.OCI_CONFIG),
        "layers": [descriptor()],
        **fields,
    }
    return json.dumps(body).encode()


def index(manifests: Any, **fields: Any) -> bytes:
    body = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests, **fields}
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (manifest(config="sha256:abc"), "manifest config must be a descriptor object"),
        (manifest(layers="x"), "field 'layers' must be a list"),
        (manifest(layers=["x"]), "manifest layers[0] must be a descriptor object, not a string"),
        (manifest(layers=[descriptor(size=10**18)]), "layers[0] field 'size'"),
        (manifest(layers=[descriptor(size=-1)]), "layers[0] field 'size'"),
        (manifest(layers=[descriptor(size=3.5)]), "layers[0] field 'size'"),
        (manifest(layers=[descriptor(size="3")]), "layers[0] field 'size'"),
        (manifest(layers=[descriptor(size=True)]), "layers[0] field 'size'"),
        (manifest(layers=[descriptor(digest=5)]), "layers[0] field 'digest' must be a string"),
        (manifest(layers=[descriptor(digest="sha256:xyz")]), "manifest layers[0]:"),
        (manifest(layers=[descriptor(urls="http://x")]), "field 'urls'"),
        (manifest(layers=[{"digest": DIGEST, "size": 1}]), "lacks the 'mediaType' field"),
        (manifest(annotations=["a"]), "field 'annotations' must be an object of strings"),
        (manifest(annotations={"a": 1}), "field 'annotations' must be an object of strings"),
        (manifest(subject="x"), "manifest subject must be a descriptor object"),
        (manifest(config=None), "lacks the 'config' field"),
        (manifest(mediaType=7), "'mediaType' must be a string"),
    ],
)
def test_manifest_fields_of_the_wrong_type_are_refused(data: bytes, named: str) -> None:
    assert named in refused(Manifest.from_json, data)
    assert named in refused(parse_manifest_or_index, data)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (index(["x"]), "image index manifests[0] must be a descriptor object, not a string"),
        (index("x"), "field 'manifests' must be a list"),
        (index([descriptor(platform="linux/amd64")]), "field 'platform' must be an object"),
        (index([descriptor(platform={"os": "linux"})]), "lacks the 'architecture' field"),
        (index([descriptor(platform={"os": 1, "architecture": "x"})]), "field 'os'"),
        (
            index([descriptor(platform={"os": "l", "architecture": "a", "os.features": "x"})]),
            "field 'os.features' must be a list of strings",
        ),
        (index([descriptor(size=-5)]), "manifests[0] field 'size'"),
    ],
)
def test_index_fields_of_the_wrong_type_are_refused(data: bytes, named: str) -> None:
    assert named in refused(Index.from_json, data)
    assert named in refused(parse_manifest_or_index, data)


@pytest.mark.parametrize(
    "parse", [ImageConfig.from_json, Manifest.from_json, Index.from_json, parse_manifest_or_index]
)
def test_json_nested_too_deep_is_refused(parse: Any) -> None:
    deep = b'{"schemaVersion": 2, "annotations": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    assert "too deeply" in refused(parse, deep)


@pytest.mark.parametrize(
    "parse", [ImageConfig.from_json, Manifest.from_json, Index.from_json, parse_manifest_or_index]
)
@pytest.mark.parametrize("data", [b"[]", b'"x"', b"7", b"\xff\xfe", b"{"])
def test_documents_that_are_not_objects_are_refused(parse: Any, data: bytes) -> None:
    refused(parse, data)
