"""Cloud credentials for the pods the Kubernetes deployers run, where Fairing had them
(``kubeflow.fairing.cloud``): :mod:`ocibuild.cloud.gcp`, :mod:`ocibuild.cloud.aws`,
:mod:`ocibuild.cloud.azure`. Each holds Fairing's pod spec mutators, passed uncalled::

    from ocibuild.cloud import gcp

    job = Job(pod_spec_mutators=[gcp.add_gcp_credentials_if_exists])

To use another secret, see ``gcp_credentials()`` and the others in :mod:`ocibuild.kubernetes.utils`.
"""
