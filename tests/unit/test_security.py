"""Argon2 client-secret hashing and HS256 access tokens (ctms_adapters.security)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import Type
from argon2.low_level import hash_secret

from ctms_adapters.security import Argon2PasswordHasher, JwtTokenCodec
from ctms_core.ports.security import (
    AccessTokenClaims,
    InvalidTokenError,
    PasswordHasher,
    TokenCodec,
)
from ctms_core.services.api_clients import new_client_secret

SECRET_KEY = "a-secret-key-long-enough-for-hs256-tests"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SUBJECT = "api_client:test_client"

# A v3-shaped client secret and the PHC string CTMS v3 (passlib, argon2id m=64MiB t=3 p=4) would
# store for it with the 16-byte salt b"ctms-v3-salt-16b".
V3_SECRET = "secret_Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ"
V3_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$Y3Rtcy12My1zYWx0LTE2Yg"
    "$3Tjq4UcoHlSydOTnhfckmmyV8X2/IeZJiW9mLdhq1E0"
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def decode_segment(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def sign_hs256(header: Any, claims: Any, key: str = SECRET_KEY) -> str:
    """A token signed by hand, the way CTMS v3 (python-jose) produced them."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


@pytest.fixture(scope="module")
def hasher() -> Argon2PasswordHasher:
    return Argon2PasswordHasher()


@pytest.fixture
def codec() -> JwtTokenCodec:
    return JwtTokenCodec(SECRET_KEY)


# --- password hashing -------------------------------------------------------------------------


def test_hasher_and_codec_satisfy_the_core_ports(
    hasher: Argon2PasswordHasher, codec: JwtTokenCodec
) -> None:
    """The adapters are structurally the ports the core declares."""
    password_hasher: PasswordHasher = hasher
    token_codec: TokenCodec = codec
    assert password_hasher is hasher
    assert token_codec is codec


def test_hash_is_argon2id_with_v3_parameters(hasher: Argon2PasswordHasher) -> None:
    """New hashes are argon2id PHC strings with the m/t/p, salt and digest sizes of CTMS v3."""
    hashed = hasher.hash("secret_x")
    match = re.fullmatch(
        r"\$argon2id\$v=19\$m=65536,t=3,p=4\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)", hashed
    )
    assert match is not None
    salt, digest = match.groups()
    assert len(base64.b64decode(salt + "=" * (-len(salt) % 4))) == 16
    assert len(base64.b64decode(digest + "=" * (-len(digest) % 4))) == 32


def test_same_secret_hashes_differently_and_both_verify(hasher: Argon2PasswordHasher) -> None:
    """Each hash has its own salt, and every one of them verifies."""
    first, second = hasher.hash("secret_same"), hasher.hash("secret_same")
    assert first != second
    assert hasher.verify(first, "secret_same")
    assert hasher.verify(second, "secret_same")


def test_wrong_secret_does_not_verify(hasher: Argon2PasswordHasher) -> None:
    """A different secret gives False, not an exception."""
    assert hasher.verify(hasher.hash("secret_right"), "secret_wrong") is False


def test_known_v3_hash_verifies(hasher: Argon2PasswordHasher) -> None:
    """A PHC string in the exact format CTMS v3 stored verifies against its secret."""
    assert hasher.verify(V3_HASH, V3_SECRET) is True
    assert hasher.verify(V3_HASH, V3_SECRET + "x") is False


def test_known_v3_vector_is_what_libargon2_computes() -> None:
    """The fixed vector is reproducible with the v3 parameters (it was not copied by mistake)."""
    computed = hash_secret(
        V3_SECRET.encode(),
        b"ctms-v3-salt-16b",
        time_cost=3,
        memory_cost=65536,
        parallelism=4,
        hash_len=32,
        type=Type.ID,
    )
    assert computed.decode() == V3_HASH


def test_argon2i_hash_verifies(hasher: Argon2PasswordHasher) -> None:
    """Hashes of another argon2 variant (passlib could write argon2i) still verify."""
    hashed = hash_secret(
        b"secret_i",
        b"sixteen-byte-slt",
        time_cost=2,
        memory_cost=1024,
        parallelism=1,
        hash_len=32,
        type=Type.I,
    ).decode()
    assert hashed.startswith("$argon2i$")
    assert hasher.verify(hashed, "secret_i") is True


@pytest.mark.parametrize(
    "hashed",
    [
        "",
        "not a hash",
        "$2b$12$C6UzMDM.H6dfI/f/IKcEeO5lFnHKp4ZCeKMh6DljzZdP6l1V3BwmG",  # bcrypt
        "$argon2id$v=19$m=65536,t=3,p=4$bad$worse",
        V3_HASH[:-4],
        "$argon2id$v=19$m=65536,t=3,p=4$Y3Rtcy12My1zYWx0LTE2Yg$é",
        "\x00",
    ],
)
def test_malformed_or_foreign_hash_is_false_not_an_error(
    hasher: Argon2PasswordHasher, hashed: str
) -> None:
    """Anything that is not a valid argon2 hash of the secret verifies as False."""
    assert hasher.verify(hashed, V3_SECRET) is False


def test_unencodable_secret_is_false(hasher: Argon2PasswordHasher) -> None:
    """A secret with a lone surrogate (not UTF-8 encodable) is a mismatch, not a crash."""
    assert hasher.verify(V3_HASH, "secret_\ud800") is False


def test_generated_client_secret_has_v3_shape() -> None:
    """Client secrets are `secret_` + 43 URL-safe characters (50 in all) and never repeat."""
    secrets = {new_client_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert re.fullmatch(r"secret_[A-Za-z0-9_-]{43}", secret)


# --- access tokens ----------------------------------------------------------------------------


def test_token_round_trip_keeps_subject_and_times(codec: JwtTokenCodec) -> None:
    """Encoding then decoding gives back the subject, expiry and issue time (whole seconds)."""
    issued = NOW + timedelta(microseconds=600_000)
    token = codec.encode(SUBJECT, issued_at=issued, expires_at=issued + timedelta(hours=1))
    claims = codec.decode(token, now=NOW + timedelta(minutes=59))
    assert claims == AccessTokenClaims(
        subject=SUBJECT, expires_at=NOW + timedelta(hours=1), issued_at=NOW
    )


def test_token_carries_the_credentials_version_it_was_issued_under(codec: JwtTokenCodec) -> None:
    version = 1_714_564_800_500_000  # microseconds: more than a float holds exactly
    token = codec.encode(
        SUBJECT, issued_at=NOW, expires_at=NOW + timedelta(hours=1), credentials_version=version
    )
    assert decode_segment(token.split(".")[1])["ctms_cv"] == version
    assert codec.decode(token, now=NOW).credentials_version == version


def test_token_has_v3_header_and_sub_exp_iat_claims(codec: JwtTokenCodec) -> None:
    """The header is exactly alg/typ and the claims are exactly sub, exp and iat."""
    token = codec.encode(SUBJECT, issued_at=NOW, expires_at=NOW + timedelta(hours=1))
    header_segment, claims_segment, _ = token.split(".")
    assert base64.urlsafe_b64decode(header_segment + "==") == b'{"alg":"HS256","typ":"JWT"}'
    assert decode_segment(claims_segment) == {
        "sub": SUBJECT,
        "exp": unix(NOW) + 3600,
        "iat": unix(NOW),
    }


def test_token_signature_is_plain_hs256_with_the_secret_key(codec: JwtTokenCodec) -> None:
    """Tokens are verifiable by any HS256 implementation holding CTMS_SECRET_KEY."""
    token = codec.encode(SUBJECT, issued_at=NOW, expires_at=NOW + timedelta(hours=1))
    signing_input, signature = token.rsplit(".", 1)
    expected = hmac.new(SECRET_KEY.encode(), signing_input.encode(), hashlib.sha256).digest()
    assert signature == b64url(expected)


def test_v3_token_without_iat_is_accepted(codec: JwtTokenCodec) -> None:
    """A CTMS v3 token (sub and exp only, sorted header) decodes with issued_at None."""
    exp = unix(NOW) + 3600
    token = sign_hs256({"alg": "HS256", "typ": "JWT"}, {"sub": SUBJECT, "exp": exp})
    claims = codec.decode(token, now=NOW)
    assert claims == AccessTokenClaims(
        subject=SUBJECT, expires_at=datetime.fromtimestamp(exp, UTC), issued_at=None
    )


def test_short_secret_key_works_without_warnings() -> None:
    """Any CTMS_SECRET_KEY string works, even one shorter than joserfc recommends."""
    short = JwtTokenCodec("short")  # would raise under -W error if the warning leaked
    token = short.encode(SUBJECT, issued_at=NOW, expires_at=NOW + timedelta(hours=1))
    assert short.decode(token, now=NOW).subject == SUBJECT
    assert token == sign_hs256(
        {"alg": "HS256", "typ": "JWT"},
        {"sub": SUBJECT, "exp": unix(NOW) + 3600, "iat": unix(NOW)},
        key="short",
    )


def test_empty_secret_key_is_refused() -> None:
    """An empty key would make every signature forgeable."""
    with pytest.raises(ValueError, match="empty"):
        JwtTokenCodec("")


def test_token_signed_with_another_key_is_rejected(codec: JwtTokenCodec) -> None:
    """A token from a codec with a different key does not verify."""
    other = JwtTokenCodec("another-secret-key-of-decent-length")
    token = other.encode(SUBJECT, issued_at=NOW, expires_at=NOW + timedelta(hours=1))
    with pytest.raises(InvalidTokenError):
        codec.decode(token, now=NOW)


def test_alg_none_token_is_rejected(codec: JwtTokenCodec) -> None:
    """An unsigned token (`alg: none`) is rejected."""
    header = b64url_json({"alg": "none", "typ": "JWT"})
    token = f"{header}.{b64url_json({'sub': SUBJECT, 'exp': unix(NOW) + 60})}."
    with pytest.raises(InvalidTokenError):
        codec.decode(token, now=NOW)


@pytest.mark.parametrize("alg", ["HS384", "HS512", "RS256", "ES256", "hs256"])
def test_token_with_another_algorithm_is_rejected(codec: JwtTokenCodec, alg: str) -> None:
    """Only HS256 is accepted, even when the MAC itself would be valid."""
    header = {"alg": alg, "typ": "JWT"}
    claims = {"sub": SUBJECT, "exp": unix(NOW) + 60}
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    digest = {"HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(alg, hashlib.sha256)
    signature = hmac.new(SECRET_KEY.encode(), signing_input.encode(), digest).digest()
    with pytest.raises(InvalidTokenError):
        codec.decode(f"{signing_input}.{b64url(signature)}", now=NOW)


def test_expired_token_is_rejected_from_the_exp_second(codec: JwtTokenCodec) -> None:
    """A token is valid strictly before `exp` and rejected at and after it (no leeway)."""
    expires = NOW + timedelta(hours=1)
    token = codec.encode(SUBJECT, issued_at=NOW, expires_at=expires)
    assert codec.decode(token, now=expires - timedelta(microseconds=1)).subject == SUBJECT
    with pytest.raises(InvalidTokenError, match="expired"):
        codec.decode(token, now=expires)
    with pytest.raises(InvalidTokenError, match="expired"):
        codec.decode(token, now=expires + timedelta(days=1))


def test_tampered_token_is_rejected(codec: JwtTokenCodec) -> None:
    """Changing the claims of a signed token breaks its signature."""
    token = codec.encode("api_client:reader", issued_at=NOW, expires_at=NOW + timedelta(hours=1))
    header, _, signature = token.split(".")
    forged_claims = b64url_json({"sub": "api_client:admin", "exp": unix(NOW) + 3600})
    with pytest.raises(InvalidTokenError):
        codec.decode(f"{header}.{forged_claims}.{signature}", now=NOW)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        "...",
        "é.é.é",
        f"{b64url(b'not json')}.{b64url_json({'sub': SUBJECT})}.sig",
        f"{b64url_json('alg-in-a-string')}.{b64url_json({'sub': SUBJECT})}.sig",
        f"{b64url_json([1, 2])}.e30.sig",
        f"{b64url_json({'alg': 'HS256', 'crit': ['x'], 'x': 1})}.e30.sig",
        "x" * 200_000,
    ],
)
def test_garbled_token_is_rejected(codec: JwtTokenCodec, token: str) -> None:
    """Malformed input raises InvalidTokenError and nothing else."""
    with pytest.raises(InvalidTokenError):
        codec.decode(token, now=NOW)


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": 2_000_000_000}, id="no-sub"),
        pytest.param({"sub": "", "exp": 2_000_000_000}, id="empty-sub"),
        pytest.param({"sub": 42, "exp": 2_000_000_000}, id="int-sub"),
        pytest.param({"sub": None, "exp": 2_000_000_000}, id="null-sub"),
        pytest.param({"sub": SUBJECT}, id="no-exp"),
        pytest.param({"sub": SUBJECT, "exp": "2000000000"}, id="string-exp"),
        pytest.param({"sub": SUBJECT, "exp": True}, id="bool-exp"),
        pytest.param({"sub": SUBJECT, "exp": None}, id="null-exp"),
        pytest.param({"sub": SUBJECT, "exp": 10**30}, id="huge-exp"),
        pytest.param({"sub": SUBJECT, "exp": 2_000_000_000, "iat": "yesterday"}, id="string-iat"),
        pytest.param({"sub": SUBJECT, "exp": 2_000_000_000, "ctms_cv": "1"}, id="string-cv"),
        pytest.param({"sub": SUBJECT, "exp": 2_000_000_000, "ctms_cv": 1.5}, id="float-cv"),
        pytest.param({"sub": SUBJECT, "exp": 2_000_000_000, "ctms_cv": True}, id="bool-cv"),
    ],
)
def test_signed_token_with_bad_claims_is_rejected(
    codec: JwtTokenCodec, claims: dict[str, Any]
) -> None:
    """A correctly signed token still needs a string `sub` and a numeric `exp` (and `iat`)."""
    token = sign_hs256({"alg": "HS256", "typ": "JWT"}, claims)
    with pytest.raises(InvalidTokenError):
        codec.decode(token, now=NOW)


@pytest.mark.parametrize("exp", ["NaN", "Infinity", "1e400"])
def test_non_finite_exp_is_rejected(codec: JwtTokenCodec, exp: str) -> None:
    """NaN or infinite `exp` values (Python's JSON reader accepts them) never mean forever."""
    header = b64url_json({"alg": "HS256", "typ": "JWT"})
    payload = b64url(f'{{"sub":"{SUBJECT}","exp":{exp}}}'.encode())
    signing_input = f"{header}.{payload}"
    signature = hmac.new(SECRET_KEY.encode(), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidTokenError):
        codec.decode(f"{signing_input}.{b64url(signature)}", now=NOW)


def test_naive_datetimes_are_a_programming_error(codec: JwtTokenCodec) -> None:
    """Times without a zone are ambiguous, so both directions refuse them."""
    naive = datetime(2024, 5, 1, 12, 0, 0)  # naive on purpose
    with pytest.raises(ValueError, match="timezone-aware"):
        codec.encode(SUBJECT, issued_at=naive, expires_at=NOW)
    token = codec.encode(SUBJECT, issued_at=NOW, expires_at=NOW + timedelta(hours=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        codec.decode(token, now=naive)
