"""The shapes of the request bodies Vertex AI and Cloud Logging take, and their checks.

A shape maps each field to its type (``str``, ``int``, ``bool``, ``"int64"``: a JSON string or
number, ``"any"``), a nested shape, or ``[item]`` for a list; ``"*"`` is any other key of a
map. :func:`check_shape` answers as Google's JSON APIs do: an unknown field at any depth is
``400 INVALID_ARGUMENT`` naming it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ACCELERATORS",
    "CUSTOM_JOB",
    "DEPLOY",
    "ENDPOINT",
    "ENTRIES_LIST",
    "PREDICT",
    "UNDEPLOY",
    "UPLOAD",
    "BadRequest",
    "check_labels",
    "check_shape",
    "required",
]

ACCELERATORS = frozenset(
    {
        *(f"NVIDIA_TESLA_{k}" for k in ("K80", "P100", "V100", "P4", "T4", "A100")),
        *(f"NVIDIA_{k}" for k in ("A100_80GB", "L4", "H100_80GB", "H100_MEGA_80GB", "B200")),
        *(f"TPU_{k}" for k in ("V2", "V3", "V4_POD", "V5_LITEPOD")),
    }
)
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")

# -- the documented shapes: field -> type, a nested shape (dict), or [item type/shape] ------

_STR, _INT, _BOOL, _INT64, _ANY = str, int, bool, "int64", "any"
_MAP: dict[str, Any] = {"*": str}  # map<string, string>
_ENV = [{"name": _STR, "value": _STR}]
_MACHINE = {
    "machineType": _STR,
    "acceleratorType": _STR,
    "acceleratorCount": _INT,
    "tpuTopology": _STR,
    "reservationAffinity": {"*": _ANY},
}
_JOB_CONTAINER = {"imageUri": _STR, "command": [_STR], "args": [_STR], "env": _ENV}
_POOL = {
    "machineSpec": _MACHINE,
    "replicaCount": _INT64,
    "containerSpec": _JOB_CONTAINER,
    "pythonPackageSpec": {"*": _ANY},
    "diskSpec": {"bootDiskType": _STR, "bootDiskSizeGb": _INT},
    "nfsMounts": [{"*": _ANY}],
}
CUSTOM_JOB = {
    "displayName": _STR,
    "labels": _MAP,
    "encryptionSpec": {"kmsKeyName": _STR},
    "jobSpec": {
        "workerPoolSpecs": [_POOL],
        "serviceAccount": _STR,
        "network": _STR,
        "reservedIpRanges": [_STR],
        "baseOutputDirectory": {"outputUriPrefix": _STR},
        "scheduling": {
            "timeout": _STR,
            "restartJobOnWorkerRestart": _BOOL,
            "strategy": _STR,
            "disableRetries": _BOOL,
        },
        "tensorboard": _STR,
        "enableWebAccess": _BOOL,
        "enableDashboardAccess": _BOOL,
        "experiment": _STR,
        "experimentRun": _STR,
        "persistentResourceId": _STR,
        "models": [_STR],
    },
}
_MODEL_CONTAINER = {
    **_JOB_CONTAINER,
    "ports": [{"containerPort": _INT}],
    "grpcPorts": [{"containerPort": _INT}],
    "predictRoute": _STR,
    "healthRoute": _STR,
    "invokeRoutePrefix": _STR,
    "deploymentTimeout": _STR,
    "sharedMemorySizeMb": _INT64,
    "startupProbe": {"*": _ANY},
    "healthProbe": {"*": _ANY},
    "livenessProbe": {"*": _ANY},
}
UPLOAD = {
    "parentModel": _STR,
    "modelId": _STR,
    "serviceAccount": _STR,
    "model": {
        "displayName": _STR,
        "description": _STR,
        "versionAliases": [_STR],
        "versionDescription": _STR,
        "artifactUri": _STR,
        "containerSpec": _MODEL_CONTAINER,
        "labels": _MAP,
        "metadataSchemaUri": _STR,
        "metadata": _ANY,
        "predictSchemata": {"*": _STR},
        "encryptionSpec": {"kmsKeyName": _STR},
    },
}
ENDPOINT = {
    "displayName": _STR,
    "description": _STR,
    "labels": _MAP,
    "trafficSplit": {"*": _INT},
    "network": _STR,
    "encryptionSpec": {"kmsKeyName": _STR},
    "dedicatedEndpointEnabled": _BOOL,
}
_REPLICAS = {"minReplicaCount": _INT, "maxReplicaCount": _INT}
DEPLOY = {
    "deployedModel": {
        "model": _STR,
        "displayName": _STR,
        "serviceAccount": _STR,
        "disableContainerLogging": _BOOL,
        "enableAccessLogging": _BOOL,
        "dedicatedResources": {
            "machineSpec": _MACHINE,
            **_REPLICAS,
            "requiredReplicaCount": _INT,
            "autoscalingMetricSpecs": [{"*": _ANY}],
            "spot": _BOOL,
        },
        "automaticResources": _REPLICAS,
        "sharedResources": _STR,
    },
    "trafficSplit": {"*": _INT},
}
UNDEPLOY = {"deployedModelId": _STR, "trafficSplit": {"*": _INT}}
PREDICT = {"instances": [_ANY], "parameters": _ANY}
ENTRIES_LIST = {
    "resourceNames": [_STR],
    "projectIds": [_STR],
    "filter": _STR,
    "orderBy": _STR,
    "pageSize": _INT,
    "pageToken": _STR,
}


class BadRequest(Exception):
    """A 400 INVALID_ARGUMENT (or another status) the handler answers with."""

    def __init__(self, message: str, status: int = 400, reason: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def check_shape(value: Any, shape: Any, where: str) -> None:
    """Raise :class:`BadRequest` where ``value`` is not of ``shape``."""
    if shape == _ANY:
        return
    if shape == _INT64:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise BadRequest(f"Invalid value at '{where}' (TYPE_INT64), {json.dumps(value)}")
        if isinstance(value, str) and not value.lstrip("-").isdigit():
            raise BadRequest(f"Invalid value at '{where}' (TYPE_INT64), {json.dumps(value)}")
        return
    if isinstance(shape, list):
        if not isinstance(value, list):
            raise BadRequest(f"Invalid value at '{where}': expected a list")
        for i, item in enumerate(value):
            check_shape(item, shape[0], f"{where}[{i}]")
        return
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            raise BadRequest(f"Invalid value at '{where}': expected an object")
        for key, item in value.items():
            inner = shape.get(key, shape.get("*"))
            if inner is None:
                raise BadRequest(
                    f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': "
                    "Cannot find field."
                )
            check_shape(item, inner, f"{where}.{key}" if where else key)
        return
    if shape is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise BadRequest(f"Invalid value at '{where}' (TYPE_INT32), {json.dumps(value)}")
    if shape is not int and not isinstance(value, shape):
        raise BadRequest(f"Invalid value at '{where}' ({shape.__name__}), {json.dumps(value)}")


def required(body: Mapping[str, Any], *paths: str) -> None:
    """Raise :class:`BadRequest` for the first of ``paths`` (dotted) that ``body`` lacks."""
    for path in paths:
        value: Any = body
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value in (None, "", [], {}):
            raise BadRequest(f"Required field is not set: {path}")


def check_labels(labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
            raise BadRequest(f"Invalid label {key}={value!r}")
