"""The examples at the end of each command's ``--help``.

Kept in one table rather than in each ``add_parser`` call: a command another module adds
(or a new verb that brings its own ``epilog``) is left as it is.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["EXAMPLES", "add_examples"]

EXAMPLES = {
    "append": """\
  ocibuild append --base python:3.12-slim --to registry.local/app:1 ./src:/app
  ocibuild append --to oci:out:app main.py --cmd python --cmd /main.py   # scratch: files only
  ocibuild append -b registry.local/app:1 -t registry.local/app:2 -f layer.tar.gz
  ocibuild append -b python:3.12-slim -t docker-daemon:app:dev ./src:/app""",
    "copy": """\
  ocibuild copy docker.io/library/alpine:3.20 registry.local/mirror/alpine:3.20
  ocibuild copy --platform linux/arm64 registry.local/app:1 oci:app-arm64:1
  ocibuild copy registry.local/app:1 docker-archive:app.tar:app:1""",
    "inspect": """\
  ocibuild inspect registry.local/app:1
  ocibuild inspect --json oci:out:app | jq .config
  ocibuild inspect --raw --platform linux/amd64 python:3.12-slim""",
    "login": """\
  echo "$TOKEN" | ocibuild login ghcr.io --username me --password-stdin
  ocibuild login registry.local:5000 -u admin      # asks for the password""",
    "logout": """\
  ocibuild logout ghcr.io
  ocibuild logout registry.local:5000 --authfile ~/.docker/config.json""",
    "cache": """\
  ocibuild cache prune                       # remove every entry
  ocibuild cache prune --keep 50 --older-than-days 14""",
    "build": """\
  ocibuild build train.py --to registry.local/ml/train:1
  ocibuild build . --requirements requirements.txt --base python:3.12-slim -t oci:out:train
  ocibuild build notebook.ipynb --preprocessor notebook --to registry.local/ml/nb:1""",
    "run": """\
  ocibuild run train.py --registry registry.local/ml         # a Kubernetes Job
  OCIBUILD_REPO=registry.local/ml ocibuild run train.py      # the same, from the environment
  ocibuild run train.py --deployer local --to oci:out:train  # a quick check on this machine""",
    "deploy": """\
  ocibuild deploy registry.local/ml/train:1 --namespace ml
  ocibuild deploy registry.local/ml/serve:1 --deployer serving --no-wait
  ocibuild deploy registry.local/ml/train:1 --dry-run        # print the manifests""",
    "plugins": """\
  ocibuild plugins
  ocibuild plugins --json | jq '.[].name'""",
}


class ExamplesFormatter(argparse.HelpFormatter):
    """Wraps descriptions as usual, but keeps an epilog of example lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_examples(subparsers: Any) -> None:
    """Give each command in :data:`EXAMPLES` its examples, unless it has an epilog already."""
    for name, parser in subparsers.choices.items():
        if name in EXAMPLES and not parser.epilog:
            parser.epilog = "examples:\n" + EXAMPLES[name]
            parser.formatter_class = ExamplesFormatter
