"""Kubernetes helpers, where Fairing had them (``kubeflow.fairing.kubernetes``).

:mod:`ocibuild.kubernetes.utils` holds the pod spec mutators. Importing this package does not
import the ``kubernetes`` client.
"""
