# mypy: disable-error-code="import-not-found, misc, no-untyped-call"
"""Build and push one image with Kubeflow Fairing 1.0.2's own AppendBuilder.

Run by the Fairing venv's python (not the suite's), as a plain script::

    V/bin/python benchmarks/fairing_driver.py --registry localhost:PORT --image-name REPO \
        --base localhost:PORT/bench/base:latest --src PAYLOAD_DIR

Every file under PAYLOAD_DIR becomes an input file of a ``BasePreProcessor`` (Fairing adds
files one by one, not directories), so the image gets them under ``/app/`` as Fairing lays
them out. Prints one JSON line: the pushed image and Fairing's own build/push split.
"""

import argparse
import json
import logging
import os
import sys
import time
from typing import Any


def main() -> int:
    """Build, push, print the result."""
    start = time.perf_counter()
    parser = argparse.ArgumentParser()
    parser.add_argument("--registry", required=True)
    parser.add_argument("--image-name", required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument("--src", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    from kubeflow.fairing.builders.append.append import AppendBuilder
    from kubeflow.fairing.preprocessors.base import BasePreProcessor

    class TimedAppendBuilder(AppendBuilder):
        """Fairing's builder unchanged, with its two steps timed."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.phases: dict[str, float] = {}

        def _build(self, transport: Any, src: Any) -> Any:
            t = time.perf_counter()
            try:
                return super()._build(transport, src)
            finally:
                self.phases["build_s"] = round(time.perf_counter() - t, 4)

        def timed_push(self, transport: Any, src: Any, img: Any, dst: Any) -> Any:
            t = time.perf_counter()
            try:
                return super().timed_push(transport, src, img, dst)
            finally:
                self.phases["push_s"] = round(time.perf_counter() - t, 4)

    imported = time.perf_counter()
    os.chdir(args.src)
    files = sorted(
        os.path.relpath(os.path.join(d, f), ".") for d, _, names in os.walk(".") for f in names
    )
    pre = BasePreProcessor(input_files=files, executable="main.py")
    builder = TimedAppendBuilder(
        registry=args.registry, image_name=args.image_name, base_image=args.base, preprocessor=pre
    )
    builder.build()
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "image": builder.image_tag,
                "tag": builder.image_tag.rsplit(":", 1)[1],
                "files": len(files),
                "import_s": round(imported - start, 4),
                "build_and_push_s": round(done - imported, 4),
                **builder.phases,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
