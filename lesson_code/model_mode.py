"""Which model the agent lessons use, online or offline, and whether the online one answers.

Why this module exists: many developers have `OPENAI_API_KEY` set globally, so "the key is
set" does not mean "the course can reach a model". The agent (`lesson_code.agent`) asks
`offline_reason()` which mode to use; the doctor cell of lesson 00 also asks
`probe_model_endpoint()`, a request with a short timeout, so that a machine without network
or with a stale key hears about it in lesson 00 instead of as a failure in lesson 05.

`COURSE_OFFLINE=1` forces the offline stand-in model whatever else is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

import httpx

__all__ = [
    "DEFAULT_BASE_URL",
    "OFFLINE_SWITCH",
    "PROBE_TIMEOUT_SECONDS",
    "model_base_url",
    "offline_reason",
    "probe_model_endpoint",
]

OFFLINE_SWITCH: Final = "COURSE_OFFLINE"
DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
PROBE_TIMEOUT_SECONDS: Final = 3.0
_TRUE: Final = frozenset({"1", "true", "yes", "on"})


def offline_reason(environ: Mapping[str, str] | None = None) -> str | None:
    """Why the agent runs offline ("COURSE_OFFLINE=1", "no OPENAI_API_KEY"), or None to go online."""
    env = os.environ if environ is None else environ
    if env.get(OFFLINE_SWITCH, "").strip().lower() in _TRUE:
        return f"{OFFLINE_SWITCH}=1"
    if not env.get("OPENAI_API_KEY", "").strip():
        return "no OPENAI_API_KEY"
    return None


def model_base_url(environ: Mapping[str, str] | None = None) -> str:
    """The OpenAI-compatible endpoint the SDK will call: `OPENAI_BASE_URL`, or OpenAI's own."""
    env = os.environ if environ is None else environ
    return (env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def probe_model_endpoint(
    environ: Mapping[str, str] | None = None, *, timeout: float = PROBE_TIMEOUT_SECONDS
) -> str | None:
    """None when the endpoint accepts `OPENAI_API_KEY` (`GET /models`), else what is wrong, in a few words.

    One request, `timeout` seconds at most, and the key is never part of the answer.
    """
    env = os.environ if environ is None else environ
    base_url = model_base_url(env)
    headers = {"authorization": f"Bearer {env.get('OPENAI_API_KEY', '').strip()}"}
    try:
        response = httpx.get(f"{base_url}/models", headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return f"{base_url} did not answer within {timeout:g} s"
    except httpx.TransportError as error:
        return f"{base_url} cannot be reached ({type(error).__name__})"
    if response.status_code in (401, 403):
        return f"{base_url} refused OPENAI_API_KEY ({response.status_code})"
    if response.status_code >= 400:
        return f"{base_url} answered {response.status_code} {response.reason_phrase}"
    return None
