"""The server driven by the official openai client: every Videos API call it has, against the
tiny model, checking the mp4 that comes back (size, frame count, fps)."""

import io

import numpy as np
import openai
import pytest
from PIL import Image

from .conftest import decode

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the client marks the Sora API deprecated

FAST = {"steps": 1, "seed": 3}  # tenku's own options, as extra body fields


def by_id(video_id, **extra):
    """``video={"id": ...}`` for extend/edit. openai 3.57 cannot send that itself (its file
    extraction rejects the dict before sending), so it goes as an extra body field, which the
    client encodes as the multipart field ``video[id]``, exactly what ``video={"id"}`` means."""
    return {"video": openai.omit, "extra_body": {"video": {"id": video_id}, **extra}}


def _done(client, video):
    video = client.videos.poll(video.id, poll_interval_ms=50)
    assert video.status == "completed", video.error
    assert video.progress == 100
    return video


@pytest.fixture(scope="module")
def first(client):
    """A finished 64x64, 1 s (9 frames at 8 fps) text-to-video."""
    return _done(client, client.videos.create(prompt="a red ball bounces", seconds="1", size="64x64", extra_body=FAST))


def test_create_poll_download(client, first, tmp_path):
    assert first.object == "video" and first.id.startswith("video_")
    assert (first.size, first.seconds, first.prompt) == ("64x64", "1", "a red ball bounces")
    assert first.completed_at >= first.created_at and first.expires_at > first.completed_at
    assert first.tenku["frames"] == 9 and first.tenku["seed"] == 3 and first.tenku["caption"]
    frames, fps = decode(client.videos.download_content(first.id).content, tmp_path)
    assert frames.shape == (9, 64, 64, 3) and fps == pytest.approx(8.0)
    thumb = Image.open(io.BytesIO(client.videos.download_content(first.id, variant="thumbnail").content))
    assert thumb.format == "PNG" and thumb.size == (64, 64)
    sheet = Image.open(io.BytesIO(client.videos.download_content(first.id, variant="spritesheet").content))
    assert sheet.width > 64


def test_create_and_poll_wide_longer(client, tmp_path):
    v = client.videos.create_and_poll(prompt="a blue square slides right", seconds="2", size="96x64",
                                      poll_interval_ms=50, extra_body=FAST)
    assert v.status == "completed" and v.size == "96x64" and v.seconds == "2"
    frames, _ = decode(client.videos.download_content(v.id).content, tmp_path)
    assert frames.shape == (17, 64, 96, 3)  # 2 s at 8 fps: 16 intervals; 17 frames > one 9-frame chunk


def test_image_to_video_upload(client, tmp_path, clip):
    buf = io.BytesIO()
    Image.fromarray(clip(1)[0]).save(buf, format="PNG")
    v = _done(client, client.videos.create(prompt="a red square moves", input_reference=("first.png", buf.getvalue(), "image/png"),
                                           seconds="1", extra_body=FAST))
    assert v.tenku["mode"] == "image-to-video"
    frames, _ = decode(client.videos.download_content(v.id).content, tmp_path)
    assert frames.shape == (9, 64, 64, 3)


def test_remix(client, first, tmp_path):
    v = _done(client, client.videos.remix(first.id, prompt="a green ball bounces", extra_body={"steps": 1}))
    assert v.remixed_from_video_id == first.id and v.prompt == "a green ball bounces" and v.tenku["mode"] == "remix"
    frames, _ = decode(client.videos.download_content(v.id).content, tmp_path)
    assert frames.shape == (9, 64, 64, 3)


def test_extend_by_id_and_edit_by_upload(client, first, tmp_path):
    ext = _done(client, client.videos.extend(prompt="the ball keeps bouncing", seconds="1", **by_id(first.id, **FAST)))
    assert ext.tenku["mode"] == "extend-forward" and ext.seconds == "2"  # the stitched total: 9 + 8 frames
    frames, _ = decode(client.videos.download_content(ext.id).content, tmp_path)
    original, _ = decode(client.videos.download_content(first.id).content, tmp_path, "o.mp4")
    assert frames.shape == (17, 64, 64, 3)
    # the given video comes back (re-encoded); all 9 of its frames are context, so they fade into
    # the tiny model's decoding towards the seam: the first is the input's
    assert np.abs(frames[0].astype(int) - original[0]).mean() < 3

    upload = client.videos.download_content(first.id).content
    edit = _done(client, client.videos.edit(prompt="a blue ball bounces", video=("in.mp4", upload, "video/mp4"),
                                             extra_body={"steps": 1, "strength": 0.5}))
    assert edit.tenku["mode"] == "edit" and edit.tenku["strength"] == 0.5
    frames, _ = decode(client.videos.download_content(edit.id).content, tmp_path)
    assert frames.shape == (9, 64, 64, 3)

    back = _done(client, client.videos.extend(prompt="what came before", seconds="1", video=("in.mp4", upload, "video/mp4"),
                                              extra_body={**FAST, "extend": "backward"}))
    frames, _ = decode(client.videos.download_content(back.id).content, tmp_path)
    assert back.tenku["mode"] == "extend-backward" and frames.shape == (17, 64, 64, 3)
    assert np.abs(frames[-1].astype(int) - original[-1]).mean() < 3  # the given video ends it (faded from the seam)


def test_a_large_upload_is_made_at_the_models_scale(client, tmp_path, clip):
    """A 320x240 video is over the tiny server's limit (16x 64x64): an edit of it, which has no
    size of its own, is made at 80x64 (the model's short side, the aspect kept), not refused."""
    from tenku.io import write_video

    write_video(tmp_path / "big.mp4", clip(9, w=320, h=240), 8.0)
    edit = _done(client, client.videos.edit(prompt="a ball", video=("big.mp4", (tmp_path / "big.mp4").read_bytes(), "video/mp4"),
                                             extra_body={"steps": 1, "strength": 0.5}))
    assert edit.size == "80x64"
    frames, _ = decode(client.videos.download_content(edit.id).content, tmp_path)
    assert frames.shape == (9, 64, 80, 3)


def test_json_bodies_as_curl_sends_them(server, first):
    import httpx

    r = httpx.post(server.url + "/v1/videos/extensions", json={"prompt": "on", "seconds": 1, "video": {"id": first.id}, "steps": 1})
    assert r.status_code == 200 and r.json()["tenku"]["mode"] == "extend-forward"
    r = httpx.post(server.url + "/v1/videos/edits", json={"prompt": "x", "video": {"id": first.id}, "strength": 2})
    assert r.status_code == 400 and r.json()["error"]["param"] == "strength"
    r = httpx.post(server.url + "/v1/videos/edits", json={"prompt": "x"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "missing_required_parameter"
    r = httpx.post(server.url + "/v1/videos", json={"prompt": "x", "connect": [first.id, "video_" + "1" * 32]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "video_not_found"


def test_loop_and_connect(client, first, tmp_path):
    loop = client.videos.create(prompt="a ball circles", seconds="2", extra_body={**FAST, "loop": True})
    other = client.videos.create(prompt="a yellow star", seconds="1", extra_body=FAST)
    loop, other = _done(client, loop), _done(client, other)
    frames, _ = decode(client.videos.download_content(loop.id).content, tmp_path)
    assert frames.shape == (17, 64, 64, 3) and loop.tenku["mode"] == "loop"
    link = _done(client, client.videos.create(prompt="the ball turns into a star", seconds="1",
                                              extra_body={**FAST, "connect": [first.id, other.id]}))
    frames, _ = decode(client.videos.download_content(link.id).content, tmp_path)
    assert frames.shape == (9 + 8 + 9, 64, 64, 3)  # A, an 8-frame transition, B


def test_list_pages_and_order(client, first):
    ids = [v.id for v in client.videos.list(limit=2, order="asc")]  # auto-pagination over `after`
    assert len(ids) == len(set(ids)) >= 3 and ids[0] == first.id
    newest = client.videos.list(limit=1)
    assert newest.has_more and newest.data[0].id == ids[-1]
    page = client.videos.list(after=first.id, order="asc", limit=100)
    assert [v.id for v in page.data] == ids[1:]


def test_delete(client, tmp_path):
    v = _done(client, client.videos.create(prompt="a ball", seconds="1", extra_body=FAST))
    gone = client.videos.delete(v.id)
    assert gone.deleted and gone.id == v.id and gone.object == "video.deleted"
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(v.id)
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content(v.id)


def _error(excinfo):
    body = excinfo.value.body
    assert set(body) >= {"type", "code", "message"}, body
    return body


@pytest.mark.parametrize("kwargs, code", [
    ({"size": "65x64"}, "invalid_size"),
    ({"size": "4096x4096"}, "invalid_size"),
    ({"size": "big"}, "invalid_size"),
    ({"size": "320x64"}, "invalid_size"),  # 5:1
    ({"seconds": "soon"}, "invalid_value"),
    ({"seconds": "1000"}, "invalid_seconds"),
    ({"model": "not-a-model"}, "invalid_model"),
    ({"extra_body": {"colour": "red"}}, "unknown_parameter"),
    ({"extra_body": {"steps": 0}}, "invalid_value"),
    ({"extra_body": {"frames": 10}}, "invalid_frames"),
    ({"extra_body": {"extend": "forward"}}, "invalid_combination"),
    ({"seconds": "0.5", "extra_body": {"loop": True}}, "invalid_frames"),
    ({"extra_body": {"input_reference": {"image_url": "http://127.0.0.1:1/x.png"}}}, "unsupported_input_reference"),
    ({"extra_body": {"input_reference": {"file_id": "file_1"}}}, "unsupported_input_reference"),
    ({"input_reference": ("x.png", b"not an image at all", "image/png")}, "unsupported_file_type"),
    ({"input_reference": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")}, "invalid_file"),
    ({"prompt": "x" * 2001}, "invalid_value"),
    ({"prompt": ""}, "invalid_value"),
])
def test_bad_requests_are_400(client, kwargs, code):
    kwargs = {"prompt": "a ball", **kwargs}
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(**kwargs)
    assert _error(e)["code"] == code
    assert e.value.status_code == 400


def test_unknown_ids_and_traversal_are_404(client, server, first):
    import httpx

    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve("video_" + "0" * 32)
    with pytest.raises(openai.NotFoundError):
        client.videos.remix("../../jobs.sqlite3", prompt="x")
    with pytest.raises(openai.NotFoundError):
        client.videos.extend(prompt="x", seconds="1", **by_id("../" + first.id))
    for path in ("/v1/videos/..%2F..%2Fjobs.sqlite3/content", "/v1/videos/%2e%2e/content", "/v1/videos/.."):
        r = httpx.get(server.url + path)
        assert r.status_code == 404 and r.json()["error"]["code"] in ("video_not_found", "not_found"), path
    r = httpx.get(server.url + "/v1/videos", params={"after": "nope"})
    assert r.status_code == 404


def test_page_and_probes(server):
    import httpx

    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and 'id="prompt"' in page.text and "<video" not in page.text.split("<script>")[0]
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/ready").json()
    assert ready["status"] == "ready" and ready["defaults"]["size"] == "64x64"


def test_delete_running_job_stops_it(client, server):
    slow = client.videos.create(prompt="a slow ball", seconds="1", extra_body={"steps": 200, "seed": 1})
    after = client.videos.create(prompt="next in line", seconds="1", extra_body=FAST)
    import time

    deadline = time.time() + 20
    while client.videos.retrieve(slow.id).progress < 1:
        assert time.time() < deadline
        time.sleep(0.02)
    assert client.videos.delete(slow.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(slow.id)
    assert _done(client, after).status == "completed"  # the worker moved on long before 200 steps
    assert not server.app.state.store.folder(slow.id).exists()
