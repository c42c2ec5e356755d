"""The admission webhooks of JobSet, Trainer v2 and the Training Operator v1, served locally.

Each project's shipped webhook manifests (after their kustomize patches), pointed at
``https://127.0.0.1:<port>`` instead of an in-cluster Service, and one throwaway CA in every
``caBundle``. The Training Operator also gets the Secret its cert-controller insists on.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from ._tls import WebhookTLS

__all__ = [
    "TRAINING_OPERATOR_NAMESPACE",
    "WEBHOOK_DNS_NAMES",
    "training_operator_secret",
    "webhook_configurations",
]

# Where the Training Operator keeps its webhook Secret (its default when MY_POD_NAMESPACE is unset).
TRAINING_OPERATOR_NAMESPACE = "kubeflow"
# The names the serving certificate carries besides 127.0.0.1: the Training Operator's
# cert-controller renews a certificate that lacks its Service's name.
WEBHOOK_DNS_NAMES = ["localhost", f"training-operator.{TRAINING_OPERATOR_NAMESPACE}.svc"]


def training_operator_secret(tls: WebhookTLS) -> list[dict[str, Any]]:
    """The Secret the Training Operator's cert-controller reads, holding certificates it keeps.

    Out of a cluster its own CA would not do: it would write that CA into the webhook
    configuration while its webhook server, which reads files a kubelet would mount from the
    Secret, served something else. Given a Secret it judges valid, it changes nothing.
    """
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "training-operator-webhook-cert",
            "namespace": TRAINING_OPERATOR_NAMESPACE,
        },
        "data": {
            "ca.crt": _b64(tls.ca_cert),
            "ca.key": _b64(tls.ca_key),
            "tls.crt": _b64(tls.cert),
            "tls.key": _b64(tls.key),
        },
    }
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": TRAINING_OPERATOR_NAMESPACE},
    }
    return [namespace, secret]


_JOBSET_PODS = {
    "matchExpressions": [{"key": "jobset.sigs.k8s.io/jobset-name", "operator": "Exists"}]
}
_VALIDATED = {
    "matchExpressions": [
        {
            "key": "trainer.kubeflow.org/webhook-validation",
            "operator": "NotIn",
            "values": ["disabled"],
        }
    ]
}
_C, _CU = ("CREATE",), ("CREATE", "UPDATE")
_TRAINER = "trainer.kubeflow.org/v1alpha1"
# (process, configuration kind, configuration name, webhook name, path, group/version,
#  resource, operations, objectSelector), from each project's manifests after kustomize.
_WEBHOOKS: list[tuple[str, str, str, str, str, str, str, tuple[str, ...], Any]] = [
    ("jobset", "Mutating", "jobset-mutating-webhook-configuration", "mjobset.kb.io",
     "/mutate-jobset-x-k8s-io-v1alpha2-jobset", "jobset.x-k8s.io/v1alpha2", "jobsets", _C, None),
    ("jobset", "Mutating", "jobset-mutating-webhook-configuration", "mpod.kb.io",
     "/mutate--v1-pod", "v1", "pods", _C, _JOBSET_PODS),
    ("jobset", "Validating", "jobset-validating-webhook-configuration", "vjobset.kb.io",
     "/validate-jobset-x-k8s-io-v1alpha2-jobset", "jobset.x-k8s.io/v1alpha2", "jobsets", _CU,
     None),
    ("jobset", "Validating", "jobset-validating-webhook-configuration", "vpod.kb.io",
     "/validate--v1-pod", "v1", "pods", _C, _JOBSET_PODS),
    ("trainer-controller-manager", "Mutating", "defaulter.trainer.kubeflow.org",
     "defaulter.trainjob.trainer.kubeflow.org",
     "/mutate-trainer-kubeflow-org-v1alpha1-trainjob", _TRAINER, "trainjobs", _CU, None),
    ("trainer-controller-manager", "Validating", "validator.trainer.kubeflow.org",
     "validator.clustertrainingruntime.trainer.kubeflow.org",
     "/validate-trainer-kubeflow-org-v1alpha1-clustertrainingruntime", _TRAINER,
     "clustertrainingruntimes", _CU, _VALIDATED),
    ("trainer-controller-manager", "Validating", "validator.trainer.kubeflow.org",
     "validator.trainingruntime.trainer.kubeflow.org",
     "/validate-trainer-kubeflow-org-v1alpha1-trainingruntime", _TRAINER, "trainingruntimes",
     _CU, _VALIDATED),
    ("trainer-controller-manager", "Validating", "validator.trainer.kubeflow.org",
     "validator.trainjob.trainer.kubeflow.org",
     "/validate-trainer-kubeflow-org-v1alpha1-trainjob", _TRAINER, "trainjobs", _CU, None),
    # The configuration name is the one the Training Operator's cert-controller looks for.
    *(
        ("training-operator", "Validating", "validator.training-operator.kubeflow.org",
         f"validator.{kind}.training-operator.kubeflow.org",
         f"/validate-kubeflow-org-v1-{kind}", "kubeflow.org/v1", f"{kind}s", _CU, None)
        for kind in ("pytorchjob", "tfjob")
    ),
]  # fmt: skip


def webhook_configurations(ports: Mapping[str, int], tls: WebhookTLS) -> list[dict[str, Any]]:
    """The Mutating/ValidatingWebhookConfigurations, each webhook calling the local process
    that listens on `ports[process]`."""
    configs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for process, kind, config, name, path, group_version, resource, ops, selector in _WEBHOOKS:
        group, _, version = group_version.rpartition("/")
        hook: dict[str, Any] = {
            "name": name,
            "admissionReviewVersions": ["v1"],
            "clientConfig": {
                "url": f"https://127.0.0.1:{ports[process]}{path}",
                "caBundle": _b64(tls.ca_cert),
            },
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "rules": [
                {
                    "apiGroups": [group],
                    "apiVersions": [version],
                    "operations": list(ops),
                    "resources": [resource],
                }
            ],
        }
        if selector is not None:
            hook["objectSelector"] = selector
        configs.setdefault((kind, config), []).append(hook)
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": f"{kind}WebhookConfiguration",
            "metadata": {"name": name, "labels": {"ocibuild.test/kubeflow": "true"}},
            "webhooks": hooks,
        }
        for (kind, name), hooks in configs.items()
    ]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
