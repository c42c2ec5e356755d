"""Certificates for an engine that verifies its clients (``dockerd --tlsverify``): a CA, the
engine's certificate for 127.0.0.1, and a client's, in the file names the docker CLI reads."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["EngineTLS", "make_engine_tls"]


@dataclass(frozen=True)
class EngineTLS:
    """``server/`` holds the engine's ca.pem, cert.pem, key.pem; ``client/`` the client's
    (a ``DOCKER_CERT_PATH``); ``stranger/`` a client of another CA."""

    server: Path
    client: Path
    stranger: Path


def make_engine_tls(directory: Path) -> EngineTLS:
    """Write a CA, a server certificate for 127.0.0.1 and two client pairs under ``directory``."""
    ca_key, ca = _ca("ocibuild engine test CA")
    other_key, other = _ca("another CA")
    tls = EngineTLS(directory / "server", directory / "client", directory / "stranger")
    _write(tls.server, ca, *_leaf(ca_key, ca, ExtendedKeyUsageOID.SERVER_AUTH))
    _write(tls.client, ca, *_leaf(ca_key, ca, ExtendedKeyUsageOID.CLIENT_AUTH))
    _write(tls.stranger, other, *_leaf(other_key, other, ExtendedKeyUsageOID.CLIENT_AUTH))
    return tls


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        _builder(subject, subject, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, usage: x509.ObjectIdentifier
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        _builder(subject, ca.subject, key)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
    )


def _write(
    directory: Path, ca: x509.Certificate, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (directory / "key.pem").write_bytes(key_pem)
    (directory / "key.pem").chmod(0o600)
