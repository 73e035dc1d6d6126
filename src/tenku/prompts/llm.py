"""A small client for any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM,
llama.cpp server, Ollama, LM Studio, ...), standard library only.

``POST {url}/chat/completions`` with a per-request timeout, bounded retries with
exponential backoff (timeouts, connection errors, HTTP 408/429/5xx, malformed or
rejected replies), no retry on other HTTP errors (a bad key or model name does
not get better). The API key is read from an environment variable, never from
the command line.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from tenku.lang import vocab as V
from tenku.world.spec import BACKGROUND_KINDS, BACKGROUNDS, DIRECTIONS, FLOOR_COLORS, PALETTE, SHAPES, SIZES

KEY_ENVS = ("TENKU_LLM_API_KEY", "OPENAI_API_KEY")  # tried in order when no variable is named


class LLMError(Exception):
    """The endpoint failed or answered badly on every attempt; the message says why."""


@dataclass
class LLMConfig:
    """Where and how to ask. ``url`` is the API base (``http://host:8000/v1``) or the
    full ``.../chat/completions`` address. ``api_key_env`` names the environment
    variable holding the key (default: TENKU_LLM_API_KEY, then OPENAI_API_KEY; none
    is fine for local servers). ``timeout`` is seconds per socket operation;
    ``retries`` extra attempts after the first, waiting ``backoff * 2**k`` seconds."""

    url: str
    model: str
    api_key_env: str | None = None
    timeout: float = 30.0
    retries: int = 2
    backoff: float = 1.0
    temperature: float = 0.7
    max_tokens: int = 500

    @property
    def endpoint(self) -> str:
        url = self.url.rstrip("/")
        return url if url.endswith("/chat/completions") else url + "/chat/completions"

    def api_key(self) -> str | None:
        names = (self.api_key_env,) if self.api_key_env else KEY_ENVS
        return next((os.environ[n] for n in names if os.environ.get(n)), None)


class _Retry(Exception):
    def __init__(self, msg: str, wait: float | None = None):
        super().__init__(msg)
        self.wait = wait


def _post(cfg: LLMConfig, body: dict[str, Any]) -> Any:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    key = cfg.api_key()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(cfg.endpoint, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=cfg.timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as e:
        detail = e.read()[:200].decode("utf-8", "replace").strip() if e.fp else ""
        msg = f"HTTP {e.code}{': ' + detail if detail else ''}"
        if e.code in (408, 409, 425, 429) or e.code >= 500:
            wait = e.headers.get("Retry-After") if e.headers else None
            raise _Retry(msg, float(wait) if wait and wait.replace(".", "", 1).isdigit() else None) from None
        raise LLMError(f"{cfg.endpoint}: {msg}") from None
    except (TimeoutError, socket.timeout):
        raise _Retry(f"no answer within {cfg.timeout:g}s") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise _Retry(f"no answer within {cfg.timeout:g}s") from None
        raise _Retry(f"cannot reach {cfg.endpoint}: {reason}") from None
    except (ConnectionError, OSError) as e:
        raise _Retry(f"connection failed: {e}") from None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _Retry(f"reply is not JSON: {raw[:80]!r}") from None


def _content(data: Any) -> str:
    """The text of the first choice; ValueError if the reply is not a chat completion."""
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"malformed reply (no choices[0].message.content): {json.dumps(data)[:120]}") from None
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str) or not content.strip():
        raise ValueError("empty reply")
    return content


def clean(text: str) -> str:
    """Strip what chat models wrap captions in: code fences, quotes, a 'Caption:' label."""
    t = text.strip()
    if t.startswith("```"):
        t = t.strip("`").strip()
        if "\n" in t and t.split("\n", 1)[0].strip().isalpha():  # ```text
            t = t.split("\n", 1)[1]
    for label in ("caption:", "detailed caption:", "expanded caption:"):
        if t.lower().startswith(label):
            t = t[len(label):]
    t = " ".join(t.split())
    if len(t) > 1 and t[0] == t[-1] and t[0] in "\"'":
        t = t[1:-1].strip()
    return t


def chat(cfg: LLMConfig, messages: list[dict[str, Any]], *, seed: int | None = None,
         validate: Callable[[str], None] | None = None,
         sleep: Callable[[float], None] = time.sleep) -> tuple[str, list[str]]:
    """Send a chat completion; return (cleaned reply text, notes on failed attempts).

    ``validate(text)`` may raise ValueError to reject a reply (it is retried like a
    transient failure). Raises :class:`LLMError` when every attempt failed.
    """
    body: dict[str, Any] = {"model": cfg.model, "messages": messages, "temperature": cfg.temperature,
                            "max_tokens": cfg.max_tokens}
    if seed is not None:
        body["seed"] = int(seed) % 2**31
    notes: list[str] = []
    wait: float | None = None
    for attempt in range(max(0, cfg.retries) + 1):
        if attempt:
            sleep(min(wait if wait is not None else cfg.backoff * 2 ** (attempt - 1), 60.0))
        wait = None
        try:
            text = clean(_content(_post(cfg, body)))
            if not text:
                raise ValueError("empty reply")
            if validate:
                validate(text)
            return text, notes
        except _Retry as e:
            notes.append(f"attempt {attempt + 1}: {e}")
            wait = e.wait
        except ValueError as e:
            notes.append(f"attempt {attempt + 1}: {e}")
    raise LLMError("; ".join(notes))


# --- prompt expansion ----------------------------------------------------------------------

EXAMPLE_PROMPT = "a red ball bounces off a big box"
EXAMPLE_CAPTION = (
    "A simple 2D animation. A large green box rests on the floor in the middle of the frame and does not move. "
    "In the upper left, a small red ball falls. It bounces three times on the floor before coming to rest and "
    "bumps into the green box. The background is a gradient from navy at the top to slate at the bottom. "
    "A sandy floor runs along the bottom of the frame."
)


def _system_prompt() -> str:
    dirs = ", ".join(d.replace("-", " and to the ") if "-" in d else d for d in DIRECTIONS)
    return f"""You expand short prompts for a text-to-video model that was trained on detailed captions of a \
simple 2D physics world. Rewrite the user's prompt as one such caption: 3 to 8 plain sentences, no lists, no quotes, \
no preamble.

The world holds 1 to 8 flat objects against a dark background.
- object colours: {", ".join(PALETTE)}
- shapes: {", ".join(SHAPES)} (ball, disc, box, block, cube, wedge, hoop and donut are fine too)
- sizes: {", ".join(SIZES)}
- motions: rests / stays still; moves, drifts, glides or slides in a straight line; bounces around the frame off \
the walls; falls (and bounces on the floor); is thrown (an arc). Moving objects may hit each other, pass behind or \
in front of one another, leave and enter the frame.
- directions: {dirs}
- background: {", ".join(BACKGROUND_KINDS)} in {", ".join(BACKGROUNDS)}; an optional floor \
({", ".join(V.CAPTION_FLOOR_WORDS)}) along the bottom; the camera may pan slowly left or right.

Rules: keep everything the prompt states (every object, its count, colour, shape, size, motion and direction, the \
background, the floor, the camera and any collision or occlusion). Add no object the prompt does not imply; if it \
names none, choose one to three. Fill in what it leaves open with plausible choices. Introduce each object once \
with an article, its size, colour and shape ("a small red ball"), then refer to it as "the red ball" or "it". Say \
each object's motion in the first sentence about it. Use only the words above for colours, shapes and sizes.

Example prompt: {EXAMPLE_PROMPT}
Example caption: {EXAMPLE_CAPTION}"""


SYSTEM_PROMPT = _system_prompt()


def llm_expand(prompt: str, seed: int, cfg: LLMConfig, check: Callable[[str], list[str]]) -> tuple[str, list[str]]:
    """Ask the model for a caption of ``prompt``; ``check(text)`` lists what the reply
    lost (empty: accepted). Returns (caption, notes); raises :class:`LLMError`."""

    def validate(text: str) -> None:
        problems = check(text)
        if problems:
            raise ValueError("reply rejected: " + "; ".join(problems[:3]))

    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt.strip()}]
    text, notes = chat(cfg, messages, seed=seed, validate=validate)
    return text, [f"LLM {n}" for n in notes]
