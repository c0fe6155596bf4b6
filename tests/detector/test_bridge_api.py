"""The API client against a local server that enforces the Pyronear contract, faults included."""

from __future__ import annotations

import pytest

from detector.bridge.api import Outcome, PyronearClient
from tests.detector.fake_pyronear import FakePyronear, make_token
from tests.detector.tiny_model import smoke_jpeg

JPEG = smoke_jpeg(200, size=64)
BOXES = "[(0.100,0.100,0.300,0.300,0.700)]"


async def post(server: FakePyronear, token: str, bboxes: str = BOXES, pose: int = 11) -> Outcome:
    client = PyronearClient(server.url, timeout=2)
    try:
        return await client.post_detection(token, pose, bboxes, 1_700_000_000.0, JPEG)
    finally:
        await client.close()


async def test_created_with_an_id_and_no_content_for_an_empty_frame(api: FakePyronear) -> None:
    token = make_token(1)
    empty = await post(api, token, "[]")
    assert (empty.kind, empty.status) == ("ok", 204)
    created = await post(api, token)
    assert (created.kind, created.status) == ("ok", 201)
    assert created.body["id"] == 1
    received = api.detections[0]
    assert received.bboxes == BOXES and received.pose_id == 11 and received.file == JPEG
    assert received.recorded_at == "2023-11-14T22:13:20.000Z"
    # An empty frame right after a detection is kept as continuity.
    assert (await post(api, token, "[]")).status == 201


@pytest.mark.parametrize(
    ("token", "status"),
    [
        ("", 401),
        ("not-a-jwt", 406),
        (make_token(1, secret=b"another-secret"), 401),
        (make_token(1, expires_in=-10), 401),
        (make_token(1, scopes=("admin",)), 403),
    ],
)
async def test_auth_errors_are_a_camera_fault_not_an_item_fault(
    api: FakePyronear, token: str, status: int
) -> None:
    # A wrong or rotated token used to mark every queued detection failed for good.
    outcome = await post(api, token)
    assert (outcome.kind, outcome.status) == ("auth", status)
    if token:
        assert token not in outcome.detail


async def test_pose_of_another_camera_is_auth_and_invalid_boxes_final(api: FakePyronear) -> None:
    other_pose = await post(api, make_token(1), pose=22)
    assert (other_pose.kind, other_pose.status) == ("auth", 403)  # the config is wrong
    for bad in ("[(0.1,0.1,1.000,0.3,0.7)]", "[(0.3,0.1,0.1,0.3,0.7)]", "[(0.1234,0,0.5,0.5,1)]"):
        outcome = await post(api, make_token(1), bad)
        assert (outcome.kind, outcome.status) == ("fail", 422), bad
        assert "invalid bboxes" in outcome.detail
    six = "[" + ",".join(["(0.1,0.1,0.2,0.2,0.5)"] * 6) + "]"
    assert (await post(api, make_token(1), six)).status == 422
    assert api.detections == []


@pytest.mark.parametrize(
    ("mode", "status", "detail"),
    [("down", 503, "HTTP 503"), ("portal", 200, "captive portal"), ("slow", None, "within 2 s")],
)
async def test_temporary_faults_are_retried(
    api: FakePyronear, mode: str, status: int | None, detail: str
) -> None:
    api.mode = mode
    outcome = await post(api, make_token(1))
    assert (outcome.kind, outcome.status) == ("retry", status)
    assert detail in outcome.detail


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502])
async def test_retry_statuses(api: FakePyronear, status: int) -> None:
    api.script = [status]
    outcome = await post(api, make_token(1))
    assert (outcome.kind, outcome.status) == ("retry", status)


async def test_connection_refused_is_a_network_failure_never_sent(api: FakePyronear) -> None:
    api.stop()
    token = make_token(1)
    outcome = await post(api, token)
    assert outcome.kind == "retry" and outcome.network and not outcome.sent
    assert token not in outcome.detail


async def test_duties_calls(api: FakePyronear) -> None:
    client = PyronearClient(api.url + "/", timeout=2)
    token = make_token(1)
    try:
        assert (await client.heartbeat(token)).ok
        assert (await client.last_image(token, JPEG)).ok
        assert (await client.pose_image(token, 11, JPEG)).ok
        masks = await client.occlusion_masks(token, 11)
        assert masks.ok and masks.body[0]["mask"] == "(0.1,0.1,0.3,0.3)"
        assert (await client.pose_image(token, 22, JPEG)).status == 403
    finally:
        await client.close()
    assert api.heartbeats == [1] and api.images == [("camera", 1), ("pose", 11)]
