"""Context stores that ship with ocibuild: where a cluster build's context waits for its pod.

``s3`` (:class:`S3ContextStore`, an S3 or S3-compatible bucket; needs ``ocibuild[s3]``) and
``pvc`` (:class:`PvcContextStore`, a PersistentVolumeClaim the build pod mounts; needs
``ocibuild[kubernetes]``). Both follow :class:`~ocibuild.pipeline.ExecutorContextStore`; their
heavy clients are imported when a context is first stored.
"""

from .._errors import ContextStoreError
from .pvc import PvcContextStore
from .s3 import S3ContextStore

__all__ = ["ContextStoreError", "PvcContextStore", "S3ContextStore"]
