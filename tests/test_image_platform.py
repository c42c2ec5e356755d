"""``Image.with_platform`` takes the same spellings as ``Image.scratch`` and ``load``."""

from __future__ import annotations

import pytest

from ocibuild import Image, InvalidPlatformError
from ocibuild.oci import Descriptor, Digest, Index, Platform
from ocibuild.oci import media_types as mt


def test_with_platform_takes_a_spelling_or_a_platform() -> None:
    spelled = Image.scratch().with_platform("linux/arm64/v8")
    typed = Image.scratch().with_platform(Platform.parse("linux/arm64/v8"))
    assert spelled.config == typed.config
    assert spelled.config.platform == Platform.parse("linux/arm64/v8")


@pytest.mark.parametrize("bad", ["linux", 64])
def test_a_bad_platform_is_one_clear_error(bad: object) -> None:
    with pytest.raises(InvalidPlatformError):
        Image.scratch().with_platform(bad)  # type: ignore[arg-type]


def test_an_index_selects_by_spelling_too() -> None:
    arm = Platform.parse("linux/arm64/v8")
    entry = Descriptor(mt.OCI_MANIFEST, Digest.of(b"{}"), 2, platform=arm)
    index = Index((entry,))
    assert index.select("linux/arm64/v8") == index.select(arm) == entry
    with pytest.raises(InvalidPlatformError):
        index.select("linux/arm64,linux/amd64")
