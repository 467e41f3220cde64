"""Every operation of the gateway's API that is not public refuses a missing, expired, forged,
wrong-audience or otherwise invalid token with 401, and says nothing about why."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from security_support import Operation, fill, operations, problem

from worksteps.emulators.oidc import LocalIssuer
from worksteps.federation import Federation

FIXED_DETAIL = "A valid bearer token is required."
_PLAIN = {"version": "1", "name": "welcome.ipynb"}  # path values that are not identifiers
# words a refusal would use if it said why; the caller must learn none of them
TELLTALES = ("expire", "audience", "aud", "signature", "kid", "key", "issuer", "iss", "alg")


def _request(http: httpx.Client, operation: Operation, token: str | None) -> httpx.Response:
    values = {name: str(uuid.uuid4()) for name in operation.parameters}
    values |= {k: v for k, v in _PLAIN.items() if k in values}
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body: dict[str, object] | None = {} if operation.method in ("POST", "PUT", "PATCH") else None
    return http.request(operation.method, fill(operation.path, values), headers=headers, json=body)


def _assert_refused(response: httpx.Response, token: str | None, label: str) -> None:
    assert response.status_code == 401, f"{label}: {response.status_code} {response.text[:200]}"
    assert response.headers["www-authenticate"] == 'Bearer realm="worksteps"', label
    body = problem(response)
    assert body["detail"] == FIXED_DETAIL, label
    assert set(body) == {"type", "title", "status", "detail", "reason", "instance"}, label
    text = json.dumps(body).lower().replace("authorization", "").replace("unauthorized", "")
    assert not [w for w in TELLTALES if w in text.replace(FIXED_DETAIL.lower(), "")], text
    if token:
        assert token not in response.text and token[-20:] not in response.text, label


def test_every_operation_but_the_public_ones_needs_a_token(federation: Federation) -> None:
    listed = operations(federation.gateway)
    assert {op.label for op in listed if op.public} == {
        "GET /healthz",
        "GET /api/auth",
        "GET /api/health",
        "GET /api/template-files/{name}",
    }, "the public operations changed: review them"
    with httpx.Client(base_url=federation.gateway, timeout=30) as http:
        answers = [(op, _request(http, op, None)) for op in listed]
    for operation, response in answers:
        if operation.public:
            assert response.status_code != 401, operation.label
        else:
            _assert_refused(response, None, operation.label)


def _b64(part: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def _forged_tokens(federation: Federation, key_file: Path) -> dict[str, str]:
    """Tokens that must all be refused, each wrong in one way."""
    issuer = federation.issuer
    now = time.time()
    impostor = LocalIssuer(issuer.issuer)  # the right issuer URL, another key
    same_kid = RSAKey.generate_key(2048, parameters={"kid": issuer.kid})
    genuine_key = LocalIssuer("http://127.0.0.1:9", key_file=key_file)  # the right key
    claims = {"iss": issuer.issuer, "sub": "alice", "aud": "worksteps", "exp": int(now) + 600}
    public_jwk = json.dumps(issuer.jwks()["keys"][0])
    unsigned = ".".join([_b64({"alg": "none", "typ": "JWT"}), _b64(claims), ""])
    return {
        "expired": issuer.mint("alice", lifetime=60, issued_at=now - 3600),
        "not-yet-valid": issuer.mint("alice", issued_at=now + 3600),
        "wrong-audience": issuer.mint("alice", audience="another-service"),
        "forged-other-key": impostor.mint("alice"),
        "forged-same-kid": jwt.encode({"alg": "RS256", "kid": issuer.kid}, claims, same_kid),
        "wrong-issuer": genuine_key.mint("alice"),
        "no-subject": jwt.encode(
            {"alg": "RS256", "kid": issuer.kid},
            {k: v for k, v in claims.items() if k != "sub"},
            RSAKey.import_key(json.loads(key_file.read_text())),
        ),
        "alg-none": unsigned,
        "hmac-with-public-key": jwt.encode(
            {"alg": "HS256", "kid": issuer.kid}, claims, OctKey.import_key(public_jwk)
        ),
        "truncated": issuer.mint("alice")[:-12],
        "garbage": "not-a-jwt",
    }


def test_expired_forged_and_wrong_audience_tokens_are_refused_without_detail(
    federation: Federation,
) -> None:
    key_file = federation.config.data_dir.resolve() / "issuer-key.json"
    tokens = _forged_tokens(federation, key_file)
    listed = [op for op in operations(federation.gateway) if not op.public]
    with httpx.Client(base_url=federation.gateway, timeout=30) as http:
        for kind, token in tokens.items():
            for operation in listed:
                response = _request(http, operation, token)
                _assert_refused(response, token, f"{kind} token: {operation.label}")
    # and the genuine token of the same user is accepted, so the refusals above are the tokens'
    me = httpx.get(
        f"{federation.gateway}/api/me",
        headers={"Authorization": f"Bearer {federation.issuer.mint('alice')}"},
    )
    assert me.status_code == 200 and me.json()["subject"] == "alice"


@pytest.mark.parametrize("scheme", ["Basic", "Token", "bearer-ish"])
def test_other_authorization_schemes_are_not_a_token(federation: Federation, scheme: str) -> None:
    token = federation.issuer.mint("alice")
    response = httpx.get(
        f"{federation.gateway}/api/me", headers={"Authorization": f"{scheme} {token}"}
    )
    _assert_refused(response, token, scheme)
