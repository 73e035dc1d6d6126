"""The LLM path against a local fake OpenAI-compatible server: a good reply is used;
timeouts, HTTP errors, malformed replies and replies that drop what the prompt
said fall back to the built-in expander with a warning."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai import FakeOpenAI  # noqa: E402

from tenku.cli import main  # noqa: E402
from tenku.prompts import LLMConfig, expand  # noqa: E402
from tenku.prompts.llm import SYSTEM_PROMPT, clean  # noqa: E402
from tenku.lang.parse import parse_prompt  # noqa: E402

PROMPT = "a red ball falls"
GOOD = ("A small red ball starts near the top of the frame and falls. It bounces twice on the floor and then "
        "settles. The background is a plain navy, with a grey floor along the bottom.")


def cfg(server, **kw):
    return LLMConfig(server.url, "fake-model", **{"timeout": 0.3, "retries": 1, "backoff": 0.01, **kw})


def test_good_reply_is_used(monkeypatch):
    monkeypatch.setenv("TENKU_LLM_API_KEY", "sk-test")
    with FakeOpenAI(lambda body: f"Caption: \"{GOOD}\"") as server:
        e = expand(PROMPT, seed=4, llm=cfg(server))
    assert e.source == "llm" and e.caption == GOOD and e.warnings == []
    o = e.spec.objects[0]
    assert (len(e.spec.objects), o.color, o.shape, o.size, o.motion) == (1, "red", "circle", "small", "fall")
    assert e.spec.background.colors == ("navy", "navy") and e.spec.background.floor
    body, headers = server.requests[0]
    assert body["model"] == "fake-model" and body["seed"] == 4
    assert body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert body["messages"][1] == {"role": "user", "content": PROMPT}
    assert headers["Authorization"] == "Bearer sk-test"
    assert all(w in SYSTEM_PROMPT for w in ("cyan", "triangle", "checker", "maroon", "Example caption"))


def _fallback(answer, expect, retries=1):
    with FakeOpenAI(answer) as server:
        e = expand(PROMPT, seed=4, llm=cfg(server, retries=retries))
    assert e.source == "builtin" and e.caption == expand(PROMPT, seed=4).caption
    assert e.warnings[0].startswith("LLM expansion failed") and expect in e.warnings[0], e.warnings
    return server


def test_timeout_falls_back():
    server = _fallback(lambda body: ("sleep", 1.0, GOOD), "no answer within 0.3s")
    assert len(server.requests) == 2  # bounded: one retry


def test_http_500_is_retried_then_falls_back():
    server = _fallback(lambda body: ("status", 500), "HTTP 500", retries=2)
    assert len(server.requests) == 3


def test_http_401_is_not_retried():
    server = _fallback(lambda body: ("status", 401), "HTTP 401", retries=2)
    assert len(server.requests) == 1


@pytest.mark.parametrize("raw,expect", [
    (b"this is not json", "not JSON"),
    (b'{"choices": []}', "malformed"),
    (b'{"choices": [{"message": {"content": "   "}}]}', "empty"),
])
def test_malformed_reply_falls_back(raw, expect):
    _fallback(lambda body: ("raw", raw), expect)


def test_reply_that_drops_what_the_prompt_said_is_rejected():
    server = _fallback(lambda body: "A blue box slides to the left across a plain grey background.", "lost: red circle")
    assert len(server.requests) == 2
    _fallback(lambda body: f"{GOOD} A green star rests in the corner.", "the caption 2")


def test_a_transient_failure_then_a_good_reply():
    answers = iter([("status", 503), GOOD])
    with FakeOpenAI(lambda body: next(answers)) as server:
        e = expand(PROMPT, seed=0, llm=cfg(server))
    assert e.source == "llm" and e.caption == GOOD
    assert any("HTTP 503" in w for w in e.warnings)


def test_unreachable_endpoint_falls_back():
    e = expand(PROMPT, seed=0, llm=LLMConfig("http://127.0.0.1:9/v1", "m", timeout=0.2, retries=0))
    assert e.source == "builtin" and "cannot reach" in e.warnings[0]


def test_clean():
    assert clean('```text\n"A red ball falls."\n```') == "A red ball falls."
    assert clean("Caption:  A red\n ball falls. ") == "A red ball falls."


def test_cli_expand(capsys, monkeypatch):
    monkeypatch.delenv("TENKU_LLM_URL", raising=False)
    monkeypatch.delenv("TENKU_LLM_MODEL", raising=False)
    assert main(["expand", PROMPT, "--seed", "3"]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == expand(PROMPT, seed=3).caption
    assert main(["expand", "a zebra ball"]) == 0
    assert "unknown words: zebra" in capsys.readouterr().err
    with FakeOpenAI(lambda body: GOOD) as server:
        assert main(["expand", PROMPT, "--llm-url", server.url, "--llm-model", "m"]) == 0
    assert capsys.readouterr().out.strip() == GOOD
    assert main(["expand", PROMPT, "--llm-url", "http://127.0.0.1:9/v1"]) == 2
    assert "--llm-model" in capsys.readouterr().err
    assert main(["expand", PROMPT, "--size", "512x16"]) == 2  # wider than the world: a one-line error
    assert "outside the world's 0.2 to 10" in capsys.readouterr().err
    assert parse_prompt(GOOD).unknown == []
