"""Throwaway certificates for the TLS registry, the token issuer, admission webhooks and an
engine that verifies its clients, made with `cryptography`."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "EngineTLS",
    "TLSFiles",
    "WebhookTLS",
    "make_engine_tls",
    "make_tls_files",
    "make_webhook_tls",
    "self_signed_rsa",
]

_VALIDITY = dt.timedelta(days=30)
_SKEW = dt.timedelta(hours=1)


@dataclass(frozen=True)
class TLSFiles:
    """A CA and a server certificate for 127.0.0.1 / localhost, as PEM files."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    cert_dir: Path  # holds only ca.crt, the shape `skopeo --cert-dir` wants


def make_tls_files(directory: Path) -> TLSFiles:
    """Write a fresh CA and a server certificate it signed into `directory`."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server_cert = _server_certificate(server_key, ca_key, ca_cert, names, _VALIDITY)

    directory.mkdir(parents=True, exist_ok=True)
    cert_dir = directory / "certs.d"
    cert_dir.mkdir(exist_ok=True)
    files = TLSFiles(
        ca_file=directory / "ca.crt",
        cert_file=directory / "server.crt",
        key_file=directory / "server.key",
        cert_dir=cert_dir,
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    files.ca_file.write_bytes(ca_pem)
    (cert_dir / "ca.crt").write_bytes(ca_pem)
    files.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(_private_pem(server_key))
    files.key_file.chmod(0o600)
    return files


@dataclass(frozen=True)
class WebhookTLS:
    """PEM bytes for admission webhooks: a CA (with its key) and a server certificate."""

    ca_cert: bytes
    ca_key: bytes
    cert: bytes
    key: bytes


def make_webhook_tls(ca_name: str, dns_names: list[str], days: int = 365) -> WebhookTLS:
    """A CA whose certificate also names `ca_name`, and a server certificate for 127.0.0.1 and
    `dns_names`; RSA keys in PKCS#1, valid for `days`.

    This is the shape open-policy-agent/cert-controller accepts as already valid (so it keeps
    it instead of minting its own CA): it verifies the CA as a leaf for `ca_name`, parses the
    CA key as PKCS#1 and renews anything expiring within 90 days.
    """
    validity = dt.timedelta(days=days)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_cert = (
        _ca_builder(ca_key, ca_name, validity)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(ca_name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = _server_certificate(key, ca_key, ca_cert, names, validity)
    return WebhookTLS(
        ca_cert=ca_cert.public_bytes(serialization.Encoding.PEM),
        ca_key=_pkcs1_pem(ca_key),
        cert=cert.public_bytes(serialization.Encoding.PEM),
        key=_pkcs1_pem(key),
    )


@dataclass(frozen=True)
class EngineTLS:
    """For ``dockerd --tlsverify``, in the file names the docker CLI reads (ca.pem, cert.pem,
    key.pem): ``server/`` the engine's, ``client/`` a client's (a ``DOCKER_CERT_PATH``),
    ``stranger/`` a client of another CA."""

    server: Path
    client: Path
    stranger: Path


def make_engine_tls(directory: Path) -> EngineTLS:
    """Write a CA, a server certificate for 127.0.0.1 and two client pairs under ``directory``."""
    tls = EngineTLS(directory / "server", directory / "client", directory / "stranger")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _ca_certificate(ca_key, "ocibuild engine test CA")
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _ca_certificate(other_key, "another CA")
    server, client = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
    for where, (key, cert), usage in (
        (tls.server, (ca_key, ca), server),
        (tls.client, (ca_key, ca), client),
        (tls.stranger, (other_key, other), client),
    ):
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        leaf = _server_certificate(leaf_key, key, cert, names, _VALIDITY, usage=usage)
        where.mkdir(parents=True, exist_ok=True)
        (where / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (where / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        (where / "key.pem").write_bytes(_private_pem(leaf_key))
        (where / "key.pem").chmod(0o600)
    return tls


def self_signed_rsa(common_name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """Return an RSA key and a self-signed certificate for it (a JWT issuer, say)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, _ca_certificate(key, common_name)


def _ca_certificate(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, common_name: str = "ocibuild test CA"
) -> x509.Certificate:
    return _ca_builder(key, common_name, _VALIDITY).sign(key, hashes.SHA256())


def _ca_builder(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    common_name: str,
    validity: dt.timedelta,
) -> x509.CertificateBuilder:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    ca_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    ca: x509.Certificate,
    names: list[x509.GeneralName],
    validity: dt.timedelta,
    *,
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH,
) -> x509.Certificate:
    """A leaf ``ca`` signed for ``names``, for ``usage`` (a server's by default)."""
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pkcs1_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
