"""The certificate adb shows in every TLS session it opens, pairing and Wireless
debugging alike: self-signed, made from the adb key (AOSP crypto/x509_generator.cpp)."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# x509_generator.cpp: ten years, serial 1, C=US O=Android CN=Adb, a CA that may sign.
_LIFETIME = datetime.timedelta(days=10 * 365)
_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Android"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Adb"),
    ]
)


def adb_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    """The key's certificate as adb makes it: the phone checks the key inside, not the signature."""
    now = datetime.datetime.now(datetime.timezone.utc)
    public = key.public_key()
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(_NAME)
        .issuer_name(_NAME)
        .public_key(public)
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + _LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
