"""Describe the machine a run happened on, for the head of results.md.

Ratios travel between machines better than absolute times, but only together
with what produced them: CPU, usable cores, Python, the versions of the
packages on the hot path, the load when the run started, and the date.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "mcp",
    "starlette",
    "uvicorn",
    "httpx",
    "pydantic",
    "anyio",
    "openai-agents",
    "openai",
    "nbclient",
    "ipykernel",
)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else whatever `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cores() -> int:
    """Cores this process may run on (a container's CPU set), which can be fewer than the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def describe() -> list[str]:
    """Markdown bullet lines describing this machine and moment."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    packages = ", ".join(f"{name} {version}" for name, version in package_versions().items())
    return [
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- CPU: {cpu_model()}; {os.cpu_count()} logical cores on the machine, {usable_cores()} usable by this run",
        f"- load average when the run started (1, 5, 15 min): {load}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}",
        f"- packages: {packages}",
    ]
