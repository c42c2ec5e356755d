"""Builders where Fairing had them (``kubeflow.fairing.builders``): :mod:`ocibuild.builders.cluster`
holds the ``ClusterBuilder`` and its context sources. Importing this package imports no
pipeline module.
"""
