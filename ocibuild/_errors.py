"""The errors ocibuild raises.

Every error is an :class:`OCIBuildError`, and most also subclass the builtin a caller
would naturally catch (``ValueError`` for bad input, ``LookupError`` for something
missing, ``OSError`` for files)::

    OCIBuildError
    ├── InvalidReferenceError (ValueError)    a malformed image reference or transport spelling
    ├── InvalidDigestError (ValueError)       a malformed digest string
    ├── InvalidPlatformError (ValueError)     a malformed os/arch[/variant]
    ├── InvalidOptionError (ValueError)       an option value that cannot be used (a level, a mtime)
    ├── ManifestError (ValueError)            a manifest, index or config that cannot be used
    ├── DigestMismatchError (ValueError)      content that does not hash to what it claims
    ├── SourceError (ValueError)              a layer source that cannot be packed (missing,
    │                                         unreadable, a socket or device, escaping the root)
    ├── TarballError (ValueError)             a layer tarball that cannot be read
    ├── NotFoundError (LookupError)           an image, tag, platform or blob that does not exist
    ├── TransportError                        an OCI layout or docker-archive that is broken
    ├── RegistryError                         the registry answered with an error
    │   ├── AuthenticationError               credentials missing or refused
    │   ├── RetryBudgetExceededError          transient failures outlasted the retry budget
    │   └── UploadSessionLostError            the registry dropped an upload session
    ├── CredentialError                       a credential store or helper failed
    ├── CacheError                            the layer cache cannot be used
    │   (the pipeline's errors, in ocibuild.pipeline._errors:)
    ├── PluginError                           a plugin failed to load, clashed, or broke a hook
    └── PipelineError                         preprocess / build / deploy failed
        ├── DependencyError                   requirements could not be resolved into wheels
        └── DeployError                       a deployer could not run the image
            └── NoClusterError                no Kubernetes configuration or cluster was found

Messages are one line, say what was wrong and what to do, and never contain secrets.
The CLI prints ``str(error)`` and exits non-zero.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AuthenticationError",
    "CacheError",
    "CredentialError",
    "DigestMismatchError",
    "InvalidDigestError",
    "InvalidOptionError",
    "InvalidPlatformError",
    "InvalidReferenceError",
    "ManifestError",
    "NotFoundError",
    "OCIBuildError",
    "RegistryError",
    "RetryBudgetExceededError",
    "SourceError",
    "TarballError",
    "TransportError",
    "UploadSessionLostError",
]


class OCIBuildError(Exception):
    """Base of every error ocibuild raises on purpose."""


class InvalidReferenceError(OCIBuildError, ValueError):
    """An image reference or transport spelling that does not parse."""


class InvalidDigestError(OCIBuildError, ValueError):
    """A digest string that is not ``algorithm:hex``."""


class InvalidPlatformError(OCIBuildError, ValueError):
    """A platform string that is not ``os/arch[/variant]``."""


class InvalidOptionError(OCIBuildError, ValueError):
    """An option value out of range or in conflict with another option."""


class ManifestError(OCIBuildError, ValueError):
    """A manifest, index or image config that is malformed or unsupported."""


class DigestMismatchError(OCIBuildError, ValueError):
    """Content whose digest or size differs from the one it was fetched or stored under."""


class SourceError(OCIBuildError, ValueError):
    """A file or directory that cannot be packed into a layer."""


class TarballError(OCIBuildError, ValueError):
    """A layer tarball that is not a readable (optionally compressed) tar stream."""


class NotFoundError(OCIBuildError, LookupError):
    """An image, tag, platform or blob that does not exist where it was looked for."""


class TransportError(OCIBuildError):
    """An OCI layout or docker-archive that cannot be read or written."""


class RegistryError(OCIBuildError):
    """An error answered by a registry, with its HTTP status and the spec's error codes."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        codes: Sequence[str] = (),
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.codes = tuple(codes)
        self.url = url


class AuthenticationError(RegistryError):
    """Credentials were missing or refused; the message names the credential source tried."""


class RetryBudgetExceededError(RegistryError):
    """Transient failures (connection errors, 429, 5xx) lasted longer than the retry budget."""


class UploadSessionLostError(RegistryError):
    """The registry dropped a blob's upload session; the blob can only be sent again whole."""


class CredentialError(OCIBuildError):
    """A credential helper or credential file could not be used."""


class CacheError(OCIBuildError):
    """The layer cache directory cannot be used."""
