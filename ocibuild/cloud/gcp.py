"""GCP credentials from the secret ``user-gcp-sa``: Fairing's pod spec mutators, passed uncalled
(``pod_spec_mutators=[add_gcp_credentials]``). ``..._if_exists`` marks the secret optional, so
a pod starts without it; see :func:`ocibuild.kubernetes.utils.gcp_credentials` for details and
for other secret names. With the secret missing, ``GOOGLE_APPLICATION_CREDENTIALS`` still
names its key file and google-auth stops there: on workload identity, add neither.
"""

from .._public import publish
from ..pipeline.deployers._credentials import add_gcp_credentials, add_gcp_credentials_if_exists

__all__ = ["add_gcp_credentials", "add_gcp_credentials_if_exists"]

publish(__name__, globals(), __all__)
