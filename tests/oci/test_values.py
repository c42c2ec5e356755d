import json

import pytest

from ocibuild import _errors as errors
from ocibuild.oci import (
    ContainerConfig,
    Descriptor,
    Digest,
    HistoryEntry,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    parse_manifest_or_index,
)
from ocibuild.oci import media_types as mt
from tests.support import OCISchema

EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_digest() -> None:
    d = Digest.of(b"")
    assert str(d) == "sha256:" + EMPTY_SHA
    assert Digest.parse(str(d)) == d
    for bad in ("sha256", "sha256:xyz", "sha256:" + "A" * 64, "SHA:abc", ":abc"):
        with pytest.raises(errors.InvalidDigestError):
            Digest.parse(bad)
    assert Digest.parse("sha512:" + "0" * 128).algorithm == "sha512"


def test_platform() -> None:
    p = Platform.parse("linux/arm64/v8")
    assert (p.os, p.architecture, p.variant) == ("linux", "arm64", "v8")
    assert str(p) == "linux/arm64/v8"
    assert Platform("linux", "arm64").matches(p)  # v8 is implied on arm64
    assert not Platform("linux", "arm", "v7").matches(Platform.parse("linux/arm/v6"))
    assert Platform("linux", "amd64").matches(Platform.parse("linux/amd64"))
    for bad in ("linux", "linux/", "a/b/c/d", ""):
        with pytest.raises(errors.InvalidPlatformError):
            Platform.parse(bad)


def test_descriptor_round_trip() -> None:
    raw = {
        "mediaType": mt.OCI_MANIFEST,
        "digest": "sha256:" + EMPTY_SHA,
        "size": 7,
        "annotations": {"b": "2", "a": "1"},
        "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
    }
    d = Descriptor.from_dict(raw)
    assert d.platform == Platform("linux", "arm64", "v8")
    assert Descriptor.from_dict(d.to_dict()) == d
    with pytest.raises(TypeError):
        d.annotations["c"] = "3"  # type: ignore[index]  # a frozen mapping must refuse this
    with pytest.raises(errors.ManifestError):
        Descriptor.from_dict({"mediaType": "x", "size": 1})
    with pytest.raises(errors.ManifestError):
        Descriptor(mt.OCI_LAYER, Digest.of(b""), -1)


def _manifest() -> Manifest:
    cfg = Descriptor(mt.OCI_CONFIG, Digest.of(b"{}"), 2)
    layer = Descriptor(mt.OCI_LAYER_GZIP, Digest.of(b"x"), 1)
    return Manifest(cfg, (layer,), annotations={"org.opencontainers.image.title": "t"})


def test_manifest_round_trip_and_schema(oci_schema: OCISchema) -> None:
    m = _manifest()
    data = m.to_json()
    obj = json.loads(data)
    oci_schema.validate_manifest(obj)
    assert Manifest.from_json(data) == m
    assert parse_manifest_or_index(data) == m
    assert m.to_json() == data  # deterministic


def test_index_round_trip_select_and_schema(oci_schema: OCISchema) -> None:
    m = _manifest().to_json()
    amd = Descriptor(mt.OCI_MANIFEST, Digest.of(m), len(m), platform=Platform("linux", "amd64"))
    arm = Descriptor(mt.OCI_MANIFEST, Digest.of(b"2"), 1, platform=Platform("linux", "arm64"))
    att = Descriptor(mt.OCI_MANIFEST, Digest.of(b"3"), 1, platform=Platform("unknown", "unknown"))
    index = Index((amd, arm, att))
    oci_schema.validate_index(json.loads(index.to_json()))
    assert parse_manifest_or_index(index.to_json()) == index
    assert index.select(Platform.parse("linux/arm64/v8")) == arm
    assert len(index.images) == 2
    with pytest.raises(errors.NotFoundError) as info:
        index.select(Platform.parse("linux/s390x"))
    assert "linux/amd64" in str(info.value) and "unknown" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"not json", "JSON"),
        (b"[]", "object"),
        (b'{"schemaVersion": 1}', "schemaVersion"),
        (b'{"schemaVersion": 2, "mediaType": "' + mt.OCI_MANIFEST.encode() + b'"}', "config"),
    ],
)
def test_bad_manifests(data: bytes, needle: str) -> None:
    with pytest.raises(errors.ManifestError) as info:
        Manifest.from_json(data)
    assert needle in str(info.value)


def test_config_edits_keep_unknown_fields(oci_schema: OCISchema) -> None:
    raw = {
        "architecture": "amd64",
        "os": "linux",
        "x-vendor": {"keep": True},
        "config": {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Labels": {"a": "1"}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    cfg = ImageConfig(raw)
    edited = cfg.with_container(
        ContainerConfig(
            entrypoint=["python"],
            env={"A": "2", "B": "3"},
            labels={"b": "2"},
            working_dir="/app",
            user="1000",
            exposed_ports=["8080"],
        )
    ).with_layers([Digest.of(b"t")], [HistoryEntry(created_by="ocibuild: x")])
    c = edited.container
    assert c["Entrypoint"] == ["python"] and "Cmd" not in c  # a new entrypoint drops Cmd
    assert c["Env"] == ["PATH=/bin", "A=2", "B=3"]
    assert c["Labels"] == {"a": "1", "b": "2"}
    assert c["ExposedPorts"] == {"8080/tcp": {}}
    assert edited.raw["x-vendor"] == {"keep": True}
    assert edited.diff_ids == (Digest.of(b"t"),)
    assert edited.history[-1]["created_by"] == "ocibuild: x"
    assert cfg.raw["config"]["Env"] == ["PATH=/bin", "A=1"]  # the original is untouched
    oci_schema.validate_config(json.loads(edited.to_json()))
    assert ImageConfig.from_json(edited.to_json()).raw == edited.raw
    empty = ImageConfig.empty(Platform("linux", "arm64", "v8"), "1970-01-01T00:00:00Z")
    oci_schema.validate_config(json.loads(empty.to_json()))
    assert empty.platform == Platform("linux", "arm64", "v8")
