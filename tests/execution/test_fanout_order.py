"""The fan-out asks the broker that usually takes longest first, over real HTTP, and still
answers in registry order. The order of asking is read from aiohttp's own request tracing
(the order in which the brokers' requests arrive depends on their threads' turns)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worksteps.core.clock import utcnow
from worksteps.core.serving import ServedApp, serve_in_thread
from worksteps.execution.fanout import fan_out
from worksteps.execution.ranking import scorer
from worksteps.execution.registry import Registry, Site
from worksteps.execution.settings import RankingSettings

KIND = "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/offerset/offerset-response-1.0"
LATENCY = {"quick": 0.02, "middling": 0.1, "slow": 0.25}


def broker(name: str) -> Starlette:
    async def requests(request: Request) -> Response:
        await request.body()
        await asyncio.sleep(LATENCY[name])
        return JSONResponse({"kind": KIND, "result": "NO", "offers": []}, status_code=303)

    return Starlette(routes=[Route("/requests", requests, methods=["POST"])])


@pytest.fixture(scope="module")
def sites() -> Iterator[list[Site]]:
    with (
        serve_in_thread(broker("quick")) as quick,
        serve_in_thread(broker("middling")) as middling,
        serve_in_thread(broker("slow")) as slow,
    ):
        served: dict[str, ServedApp] = {"quick": quick, "middling": middling, "slow": slow}
        yield [Site(name=name, url=app.url) for name, app in served.items()]


async def ask(registry: Registry, sites: list[Site]) -> list[str]:
    """One fan-out; the order in which the brokers were asked (their ports)."""
    asked: list[int] = []

    async def started(_: object, __: object, params: aiohttp.TraceRequestStartParams) -> None:
        asked.append(params.url.port or 0)

    tracing = aiohttp.TraceConfig()
    tracing.on_request_start.append(started)
    async with aiohttp.ClientSession(trace_configs=[tracing]) as posts:
        fan = await fan_out(
            posts,
            sites,
            {},
            b"{}",
            {},
            deadline=2.0,
            late_grace=2.0,
            limit=65536,
            score=scorer(RankingSettings(), utcnow()),
            ask_order=registry.longest_first(sites),
        )
    assert [a.site for a in fan.answers] == ["quick", "middling", "slow"]  # registry order
    assert [a.status for a in fan.answers] == ["no", "no", "no"]
    for answer in fan.answers:
        assert answer.elapsed is not None
        registry.note_answer_time(answer.site, answer.elapsed)
    names = {int(site.url.rsplit(":", 1)[1]): site.name for site in sites}
    return [names[port] for port in asked]


async def test_the_broker_that_takes_longest_is_asked_first(sites: list[Site]) -> None:
    registry = Registry(sites)
    assert await ask(registry, sites) == ["quick", "middling", "slow"]  # nothing known yet
    assert await ask(registry, sites) == ["slow", "middling", "quick"]
    times = registry.answer_times
    assert times["quick"] < times["middling"] < times["slow"]


def test_answer_times_are_a_moving_average_and_the_unknown_go_first() -> None:
    sites = [Site(name=n, url=f"http://127.0.0.1:{9000 + i}") for i, n in enumerate("abc")]
    registry = Registry(sites)
    registry.note_answer_time("a", 1.0)
    registry.note_answer_time("a", 0.0)
    assert registry.answer_times["a"] == pytest.approx(0.7)
    registry.note_answer_time("b", 0.5)
    registry.note_answer_time("nowhere", 9.0)  # not a site: ignored
    assert "nowhere" not in registry.answer_times
    assert [s.name for s in registry.longest_first(sites)] == ["c", "a", "b"]
