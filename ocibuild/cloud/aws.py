"""AWS credentials from the secret ``aws-secret``: Fairing's pod spec mutators, passed uncalled
(``pod_spec_mutators=[add_aws_credentials]``). ``..._if_exists`` marks the secret optional, so
a pod starts without it; see :func:`ocibuild.kubernetes.utils.aws_credentials` for details and
for other secret names.
"""

from .._public import publish
from ..pipeline.deployers._credentials import add_aws_credentials, add_aws_credentials_if_exists

__all__ = ["add_aws_credentials", "add_aws_credentials_if_exists"]

publish(__name__, globals(), __all__)
