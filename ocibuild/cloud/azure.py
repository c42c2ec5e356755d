"""Azure credentials from the secret ``azcreds``: Fairing's pod spec mutators, passed uncalled
(``pod_spec_mutators=[add_azure_credentials]``). ``..._if_exists`` marks the secret optional, so
a pod starts without it; see :func:`ocibuild.kubernetes.utils.azure_credentials` for details and
for other secret names.
"""

from .._public import publish
from ..pipeline.deployers._credentials import add_azure_credentials, add_azure_credentials_if_exists

__all__ = ["add_azure_credentials", "add_azure_credentials_if_exists"]

publish(__name__, globals(), __all__)
