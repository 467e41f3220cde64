"""Offer requests are rate-limited per user: a token bucket each, 429 with Retry-After beyond
it, other users unaffected, and the caller who waits as told gets in."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from worksteps.core.errors import TooManyRequests
from worksteps.execution.ratelimit import OfferRateLimit
from worksteps.execution.settings import RateLimitSettings
from worksteps.federation import Federation


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    limit = OfferRateLimit(RateLimitSettings(rate=0.25, burst=3), clock)
    for _ in range(3):
        limit.take("alice")
    with pytest.raises(TooManyRequests) as refused:
        limit.take("alice")
    assert refused.value.status == 429
    assert refused.value.headers == {"Retry-After": "4"}  # one token per 4 s
    assert refused.value.extra == {"retryAfter": 4}
    limit.take("bob")  # another user has a bucket of their own
    clock.now += 3.9
    with pytest.raises(TooManyRequests) as again:
        limit.take("alice")
    assert again.value.headers == {"Retry-After": "1"}  # a refusal took nothing
    clock.now += 0.1
    limit.take("alice")
    clock.now += 100
    for _ in range(3):  # refilled to the burst, never beyond it
        limit.take("alice")
    with pytest.raises(TooManyRequests):
        limit.take("alice")


def test_full_buckets_are_forgotten() -> None:
    clock = Clock()
    limit = OfferRateLimit(RateLimitSettings(rate=1, burst=2), clock)
    for n in range(50):
        limit.take(f"user-{n}")
    assert len(limit) == 50
    clock.now += 2.0  # every bucket is full again
    limit.take("late")
    assert len(limit) == 1


def test_rate_limit_settings_are_bounded() -> None:
    with pytest.raises(ValidationError):
        RateLimitSettings(rate=0)
    with pytest.raises(ValidationError):
        RateLimitSettings(burst=0)
    assert RateLimitSettings().burst >= 10, "a person clicking never meets the default limit"


@pytest.fixture
def http(federation: Federation) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{federation.gateway}/api", timeout=30) as client:
        yield client


def _offer_request(http: httpx.Client, token: str, body: object) -> httpx.Response:
    return http.post("/executions", json=body, headers={"Authorization": f"Bearer {token}"})


def test_the_gateway_answers_429_with_retry_after_past_a_users_burst(
    federation: Federation, http: httpx.Client
) -> None:
    defaults = RateLimitSettings()  # what the federation's execution service runs with
    carol, dave = federation.issuer.mint("carol-rl"), federation.issuer.mint("dave-rl")
    for _ in range(defaults.burst):  # invalid requests count too: each one is an attempt
        assert _offer_request(http, carol, {}).status_code == 422
    limited = _offer_request(http, carol, {})
    assert limited.status_code == 429, limited.text
    wait = math.ceil(1 / defaults.rate)
    assert limited.headers["retry-after"] == str(wait)
    assert limited.headers["content-type"].startswith("application/problem+json")
    problem = limited.json()
    assert problem["reason"] == "rate-limited" and problem["retryAfter"] == wait
    assert "Try again in" in problem["detail"]
    assert _offer_request(http, dave, {}).status_code == 422  # dave is not limited
    made = http.post(
        "/worksteps/from-template",
        json={"template": "python-script"},
        headers={"Authorization": f"Bearer {carol}"},
    ).json()
    request = http.get(
        f"/worksteps/{made['uuid']}/request", headers={"Authorization": f"Bearer {carol}"}
    ).json()
    time.sleep(wait)  # as Retry-After says
    answered = _offer_request(http, carol, {"request": request})
    assert answered.status_code == 201, answered.text
    withdrawn = http.post(
        f"/executions/{answered.json()['id']}/cancel", headers={"Authorization": f"Bearer {carol}"}
    )
    assert withdrawn.status_code == 200
