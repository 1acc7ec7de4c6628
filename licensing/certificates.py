"""UMS ID certificates: the public half of the key pair a UMS makes at installation. The License
Portal keeps the certificate; the licensing service verifies a UMS's request signatures with it."""

import base64
import binascii

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from django.core.exceptions import ValidationError

from .contract import certificate_fingerprint


def load_certificate(pem: str, field: str = "certificate") -> x509.Certificate:
    """Parse a UMS ID certificate (PEM); a ValidationError keyed by ``field`` names what is wrong."""
    text = (pem or "").strip()
    if not text:
        raise ValidationError({field: "Upload or paste the UMS ID certificate (.crt, PEM)."})
    try:
        cert = x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        shown = text[:40] + ("…" if len(text) > 40 else "")
        raise ValidationError(
            {field: f"{shown!r} is not a PEM certificate (-----BEGIN CERTIFICATE----- …)."}
        ) from None
    key = cert.public_key()
    if not isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
        raise ValidationError(
            {field: f"The certificate's key is {type(key).__name__}; a UMS ID key is Ed25519 or ECDSA."}
        )
    return cert


def fingerprint_of(cert: x509.Certificate) -> str:
    return certificate_fingerprint(cert.public_bytes(Encoding.DER))


def certificate_subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def signature_valid(cert_pem: str, payload: bytes, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is the UMS ID key's signature over ``payload``."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except (InvalidSignature, ValueError, binascii.Error, TypeError):
        return False
    return True
