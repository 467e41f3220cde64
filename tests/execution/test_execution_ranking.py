"""Ranking offers: estimated ready time, data locality, start; every score part explained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from worksteps.execution.offers import LOCALITY_KIND, Offer, read_offer
from worksteps.execution.ranking import rank_offers
from worksteps.execution.settings import RankingSettings
from worksteps.schema import kinds
from worksteps.schema.documents import OfferSet

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
WEIGHTS = RankingSettings(data_remote=300, image_remote=60, unknown_locality=120)


def _offer(
    site: str,
    uuid: str,
    starts_in: float | None,
    preparing: float = 60,
    data: str | None = None,
    image: str | None = None,
) -> Offer:
    start = NOW + timedelta(seconds=starts_in) if starts_in is not None else None
    return Offer(
        site=site,
        uuid=uuid,
        session=f"http://{site}/sessions/{uuid}",
        start=start,
        window=(start, start) if start else None,
        preparing=timedelta(seconds=preparing),
        duration=timedelta(hours=1),
        expires=NOW + timedelta(minutes=5),
        data=data,
        image=image,
    )


def test_data_local_beats_a_slightly_earlier_remote_offer_and_says_why() -> None:
    remote = _offer("site-a", "a", 0, preparing=60, data="remote", image="cached")
    local = _offer("site-b", "b", 0, preparing=240, data="local", image="remote")
    unknown = _offer("site-c", "c", 0, preparing=60)
    ranked = rank_offers([remote, local, unknown], WEIGHTS, NOW)
    assert [r.offer.uuid for r in ranked] == ["c", "b", "a"]
    assert [r.rank for r in ranked] == [1, 2, 3]
    by_uuid = {r.offer.uuid: r for r in ranked}
    assert by_uuid["a"].score == {
        "ready_in": 60.0,
        "data": 300.0,
        "image": 0.0,
        "unknown_locality": 0.0,
        "total": 360.0,
    }
    assert by_uuid["b"].score["total"] == 240 + 60
    assert by_uuid["c"].score["total"] == 60 + 120
    assert by_uuid["a"].reasons == [
        "ready in 1 min (starts in 0 s, preparing PT1M)",
        "data must be moved to site-a: +300 s",
        "image cached at the site: +0 s",
        "rank 3: score 360 s (lowest first)",
    ]
    assert "image must be pulled: +60 s" in by_uuid["b"].reasons
    assert "data already at site-b: +0 s" in by_uuid["b"].reasons
    assert "data locality not reported by the broker: +120 s" in by_uuid["c"].reasons
    view = by_uuid["b"].as_dict()
    assert view["ready"] == "2030-01-01T12:04:00Z" and view["rank"] == 2
    assert view["locality"] == {"data": "local", "image": "remote"}


def test_ties_go_to_the_earlier_start_then_site_and_offer_and_unscheduled_offers_come_last() -> (
    None
):
    late_start = _offer("site-a", "x", 120, preparing=0, data="local", image="cached")
    early_start = _offer("site-b", "y", 0, preparing=120, data="local", image="cached")
    twin = _offer("site-a", "z", 0, preparing=120, data="local", image="cached")
    unscheduled = _offer("site-a", "w", None)
    ranked = rank_offers([unscheduled, late_start, early_start, twin], WEIGHTS, NOW)
    assert [r.offer.uuid for r in ranked] == ["z", "y", "x", "w"]
    assert ranked[-1].score["total"] is None
    assert ranked[-1].reasons[0].startswith("the offer has no schedule")


def test_the_past_counts_as_now_and_duplicates_are_ranked_once() -> None:
    started = _offer("site-a", "p", -600, preparing=60, data="local", image="cached")
    ranked = rank_offers([started, started], WEIGHTS, NOW)
    assert len(ranked) == 1 and ranked[0].score["ready_in"] == 0.0


offers = st.lists(
    st.builds(
        _offer,
        site=st.sampled_from(["site-a", "site-b", "site-c"]),
        uuid=st.uuids().map(str),
        starts_in=st.none() | st.floats(min_value=-3600, max_value=86400),
        preparing=st.floats(min_value=0, max_value=7200),
        data=st.sampled_from([None, "local", "remote"]),
        image=st.sampled_from([None, "cached", "remote"]),
    ),
    max_size=20,
)


@given(offers)
def test_the_ranking_is_a_total_order_by_score(given_offers: list[Offer]) -> None:
    ranked = rank_offers(given_offers, WEIGHTS, NOW)
    assert [r.rank for r in ranked] == list(range(1, len(ranked) + 1))
    assert {r.offer.uuid for r in ranked} == {o.uuid for o in given_offers}
    totals = [r.score["total"] for r in ranked]
    scheduled = [t for t in totals if t is not None]
    assert scheduled == sorted(scheduled)
    assert totals[: len(scheduled)] == scheduled  # unscheduled ones only at the end
    for r in ranked:
        parts = r.score
        if parts["total"] is not None:
            summed = [parts[k] for k in ("ready_in", "data", "image", "unknown_locality")]
            assert all(p is not None for p in summed)
            assert abs(parts["total"] - sum(p or 0.0 for p in summed)) < 0.01
        assert r.reasons[-1].startswith(f"rank {r.rank}:")
    if len({o.uuid for o in given_offers}) == len(given_offers):  # the input order is irrelevant
        assert rank_offers(list(reversed(given_offers)), WEIGHTS, NOW) == ranked


def test_an_offer_document_is_read_with_its_schedule_and_locality() -> None:
    doc = {
        "kind": kinds.OFFERSET,
        "result": "YES",
        "offers": [
            {
                "kind": kinds.SESSION_SCHEDULED,
                "meta": {
                    "uuid": "3f1c9c2e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
                    "url": "http://b/sessions/3f1c9c2e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
                    "messages": [
                        {
                            "kind": LOCALITY_KIND,
                            "level": "INFO",
                            "values": {"data": "remote", "image": "cached"},
                            "message": "data remote, image cached",
                        },
                        {"kind": "urn:estimate", "message": "stage cube: 2 min"},
                    ],
                },
                "phase": "OFFERED",
                "expires": "2030-01-01T12:05:00Z",
                "compute": {
                    "kind": kinds.COMPUTE_SIMPLE,
                    "cores": {"min": 4, "max": 4},
                    "memory": {"min": 8, "max": 8},
                },
                "schedule": {
                    "preparing": {"start": "2030-01-01T12:00:00Z", "duration": "PT3M"},
                    "available": {"start": "2030-01-01T12:03:00Z/PT0S", "duration": "PT1H"},
                },
            }
        ],
    }
    offerset = OfferSet.model_validate(doc)
    assert offerset.offers
    offer = read_offer("site-b", "http://b", offerset.offers[0])
    assert offer is not None
    assert offer.ready == datetime(2030, 1, 1, 12, 3, tzinfo=UTC)
    assert (offer.data, offer.image, offer.cores, offer.memory) == ("remote", "cached", 4, 8)
    assert offer.notes == ["stage cube: 2 min"]
    assert offer.duration == timedelta(hours=1)
    assert offer.as_dict()["window"] == {
        "earliest": "2030-01-01T12:03:00Z",
        "latest": "2030-01-01T12:03:00Z",
    }
