"""A certificate authority made at run time, for TLS tests against a real broker.

Nothing here is committed: each test session makes its own CA and broker
certificate in a temporary directory. The files are what a user has: a CA
certificate in PEM for the client (``ssl.ca.location``) and, for the broker,
one PEM file holding its unencrypted PKCS#8 key and its certificate, which
Apache Kafka reads with ``ssl.keystore.type=PEM``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# P-256 keys: generated in milliseconds, and accepted by both Java and OpenSSL
_CURVE = ec.SECP256R1()
_VALID = dt.timedelta(days=2)


@dataclass(frozen=True)
class CertificateAuthority:
    name: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path  # the CA certificate in PEM: a client's ssl.ca.location


@dataclass(frozen=True)
class ServerCert:
    pem_path: Path  # key (PKCS#8, unencrypted) then certificate chain, both PEM
    cert_path: Path  # the certificate alone


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sequence-connector tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(directory: Path, name: str = "test-ca") -> CertificateAuthority:
    """A self-signed CA, its certificate written to ``directory/<name>.pem``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(_CURVE)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name)).issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{name}.pem"
    path.write_bytes(_pem(cert))
    return CertificateAuthority(name, cert, key, path)


def issue_server_cert(ca: CertificateAuthority, directory: Path, host: str = "127.0.0.1",
                      name: str = "broker") -> ServerCert:
    """A server certificate for ``host`` (an IP or DNS SAN), signed by ``ca``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(_CURVE)
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host)).issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    pem_path = directory / f"{name}-keystore.pem"
    pem_path.write_bytes(key_pem + _pem(cert) + _pem(ca.cert))
    pem_path.chmod(0o600)
    cert_path = directory / f"{name}.pem"
    cert_path.write_bytes(_pem(cert))
    return ServerCert(pem_path, cert_path)
