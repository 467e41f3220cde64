"""Offers estimate preparation from the site's real state and its recorded history."""

from __future__ import annotations

from typing import Any

from running import RunningBroker
from test_engine import TERMINAL, _accept_first, _events, _headless, _host, _rucio

from worksteps.emulators.faults import FaultRule
from worksteps.emulators.rig import SiteRig
from worksteps.schema.isotime import parse_duration


def _offer(broker: RunningBroker, doc: dict[str, Any]) -> dict[str, Any]:
    offerset = broker.offers(doc)
    assert offerset["result"] == "YES", offerset
    offer: dict[str, Any] = offerset["offers"][0]
    for other in offerset["offers"]:
        broker.update(other["meta"]["uuid"], "REJECTED")
    return offer


def _preparing(offer: dict[str, Any]) -> float:
    return parse_duration(offer["schedule"]["preparing"]["duration"]).total_seconds()


def _notes(offer: dict[str, Any]) -> str:
    return " | ".join(m["message"] for m in offer["meta"].get("messages", []))


def _locality(offer: dict[str, Any]) -> dict[str, str]:
    found = [m for m in offer["meta"]["messages"] if m["kind"] == "urn:data-locality"]
    assert len(found) == 1, offer["meta"]["messages"]
    values: dict[str, str] = found[0]["values"]
    return values


def test_local_data_and_cached_images_prepare_sooner(
    rig: SiteRig, site_broker: RunningBroker
) -> None:
    local = _offer(site_broker, _headless(rig, _rucio("psf-0004.fits")))
    remote = _offer(site_broker, _headless(rig, _rucio("cube-0003.fits")))
    assert "already at RIG-A" in _notes(local)
    assert "to replicate from REMOTE-T0" in _notes(remote)
    assert _preparing(remote) > _preparing(local)
    uncached = _headless(rig)
    uncached["executable"]["image"]["locations"] = [f"{_host(rig)}/skaha/carta:4.1"]
    far_image = _offer(site_broker, uncached)
    assert "to replicate" in _notes(far_image)
    assert f"{TERMINAL} cached at the site" in _notes(local)
    assert "session start ≈ 30.0 s" in _notes(local)  # no history yet: the configured guess
    assert _locality(local) == {"data": "local", "image": "cached"}
    assert _locality(remote) == {"data": "remote", "image": "cached"}
    assert _locality(far_image) == {"data": "local", "image": "remote"}


def test_history_of_launches_replaces_the_guess(rig: SiteRig, site_broker: RunningBroker) -> None:
    uuid = _accept_first(site_broker, _headless(rig))
    _events(site_broker, uuid, {"COMPLETED", "FAILED"})
    after = _offer(site_broker, _headless(rig))
    assert "(recent launches)" in _notes(after)
    assert _preparing(after) < 30


def test_an_unreachable_service_does_not_block_offers(
    rig: SiteRig, site_broker: RunningBroker
) -> None:
    rig.rucio.app.rules = [FaultRule(path="/replicas", status=500, error_rate=1.0)]
    offer = _offer(site_broker, _headless(rig, _rucio("obs-0002.fits")))
    assert "replicas unknown" in _notes(offer)
