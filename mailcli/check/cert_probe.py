"""The audit's `certificate` finding, from what the TLS probe saw (no network here).

Graded: the chain does not verify against the endpoint's CA file or the system store
(an intermediate missing, an unknown CA, self-signed, expired) = fail; the name asked
for is not among the certificate's names = fail; expiry within 21 days = warn; an RSA
key under 2048 bits = warn. The key size is read from the certificate's DER bytes
(the stdlib does not tell it, and mailcli carries no X.509 library).
"""

from __future__ import annotations

import contextlib
import ipaddress
from typing import NamedTuple

from mailcli.check.findings import Finding, Level
from mailcli.tlsinfo import CertificateInfo

EXPIRY_WARNING_DAYS = 21
MIN_RSA_BITS = 2048
# X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
NAME_MISMATCH_CODES = frozenset({62, 64})
_RSA_OID = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1 rsaEncryption
_EC_OID = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1 id-ecPublicKey
_CURVE_BITS = {
    bytes.fromhex("2a8648ce3d030107"): 256,  # prime256v1
    bytes.fromhex("2b81040022"): 384,  # secp384r1
    bytes.fromhex("2b81040023"): 521,  # secp521r1
}


class CertificateFacts(NamedTuple):
    host: str  # the name the client asked for
    info: CertificateInfo
    der: bytes
    verify_code: int | None  # None: the chain verified
    verify_message: str | None
    presented: tuple[str, ...]  # the chain as sent: "subject <- issuer" per certificate


def grade_certificate(facts: CertificateFacts, fix: str) -> Finding:
    problems: list[tuple[Level, str]] = []
    if facts.verify_code is not None and facts.verify_code not in NAME_MISMATCH_CODES:
        problems.append(("fail", _chain_problem(facts)))
    if facts.verify_code in NAME_MISMATCH_CODES or not name_matches(facts.host, facts.info.sans):
        problems.append(("fail", f"{facts.host} is not among its names"))
    days = facts.info.days_left
    if days is not None and 0 <= days < EXPIRY_WARNING_DAYS:
        problems.append(("warn", f"expires in {days} days"))
    key_kind, bits = public_key_size(facts.der)
    if key_kind == "RSA" and bits and bits < MIN_RSA_BITS:
        problems.append(("warn", f"RSA key of {bits} bits (under {MIN_RSA_BITS})"))
    evidence = _evidence(facts, key_kind, bits)
    if not problems:
        return Finding(
            "certificate",
            "ok",
            "chain verifies, name matches, "
            + (f"{days} days left" if days is not None else "expiry unknown"),
            evidence,
        )
    level: Level = "fail" if any(level == "fail" for level, _ in problems) else "warn"
    return Finding("certificate", level, "; ".join(text for _, text in problems), evidence, fix)


def _chain_problem(facts: CertificateFacts) -> str:
    message = facts.verify_message or f"verify error {facts.verify_code}"
    if facts.verify_code == 20:  # unable to get local issuer certificate
        return (
            f"chain does not verify ({message}): an intermediate certificate is missing, "
            f"or the issuer ({facts.info.issuer or '?'}) is not trusted here"
        )
    return f"chain does not verify: {message}"


def _evidence(facts: CertificateFacts, key_kind: str, bits: int | None) -> tuple[str, ...]:
    info = facts.info
    verified = "verified" if facts.verify_code is None else f"NOT verified: {facts.verify_message}"
    lines = [
        f"== asked for {facts.host}; {verified}",
        f"== subject {info.subject}; issuer {info.issuer}",
        f"== names {', '.join(info.sans) or '-'}",
        f"== expires {info.not_after} ({info.days_left} days)",
        f"== key {key_kind} {bits if bits else '?'} bits",
    ]
    lines += [f"== presented [{n}] {link}" for n, link in enumerate(facts.presented)]
    return tuple(lines)


def name_matches(host: str, sans: list[str]) -> bool:
    """RFC 6125 in brief: an IP literal against IP SANs (as Python lists them: "IP
    Address" entries come as text), a name against DNS SANs with a left-most `*` label."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for name in sans:
        if address is not None:
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(name.strip()) == address:
                    return True
            continue
        if _dns_match(host.lower().rstrip("."), name.lower().rstrip(".")):
            return True
    return False


def _dns_match(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return host == pattern


def public_key_size(der: bytes) -> tuple[str, int | None]:
    """("RSA", modulus bits), ("EC", curve bits) or (kind, None) from a DER certificate."""
    try:
        tbs = _children(_children(der)[0][1])[0][1]
        fields = _children(tbs)
        offset = 1 if fields[0][0] == 0xA0 else 0  # the optional [0] version
        spki = _children(fields[offset + 5][1])
        algorithm = _children(spki[0][1])
        oid = algorithm[0][1]
        if oid == _RSA_OID:
            key = _children(spki[1][1][1:])  # BIT STRING: skip the unused-bits byte
            modulus = _children(key[0][1])[0][1]
            return "RSA", int.from_bytes(modulus, "big").bit_length()
        if oid == _EC_OID:
            return "EC", _CURVE_BITS.get(algorithm[1][1])
        return "other", None
    except (IndexError, ValueError):
        return "unknown", None


def _children(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) elements of DER `data`, one level deep."""
    items, position = [], 0
    while position < len(data):
        tag = data[position]
        length = data[position + 1]
        position += 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(data[position : position + count], "big")
            position += count
        if position + length > len(data):
            raise ValueError("truncated DER")
        items.append((tag, data[position : position + length]))
        position += length
    return items
