"""Makes the certificates of the TLS unit tests (run with the compat suite's venv:
`.venv/bin/python crates/basalt-outbound/tests/data/make.py`). Keys are thrown away: the tests only
verify."""
import datetime as dt
import ipaddress
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

HERE = pathlib.Path(__file__).parent
SAN = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
                                   x509.IPAddress(ipaddress.ip_address("10.0.0.1"))])


def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def cert(subject, pub, issuer, signer, *, ca, days=36500, start=None, san=True):
    start = start or dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer)).public_key(pub)
         .serial_number(x509.random_serial_number()).not_valid_before(start)
         .not_valid_after(start + dt.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        b = b.add_extension(SAN, critical=False)
    if ca:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
    return b.sign(signer, hashes.SHA256())


def write(fname, c):
    (HERE / fname).write_bytes(c.public_bytes(serialization.Encoding.PEM))


# Self-signed and marked CA, as `openssl req -x509` makes them by default.
k = key()
write("self-signed-127.pem", cert("basalt test", k.public_key(), "basalt test", k, ca=True))
ca_key = key()
write("ca.pem", cert("basalt test CA", ca_key.public_key(), "basalt test CA", ca_key, ca=True, san=False))
leaf = key()
write("ca-issued-127.pem", cert("basalt leaf", leaf.public_key(), "basalt test CA", ca_key, ca=False))
k = key()
write("expired-127.pem", cert("old", k.public_key(), "old", k, ca=True, days=30,
                              start=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)))
k = key()
write("forged-127.pem", cert("forged", k.public_key(), "forged", ca_key, ca=True))
