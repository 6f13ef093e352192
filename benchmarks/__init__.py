"""Benchmarks for the course: `python -m benchmarks [--quick] [--only NAME]`.

Why they look the way they do: the machine is shared and noisy, so no figure
here is a single absolute time. Every comparison runs its variants side by side
in one process run, round-robin over many short rounds (the order rotated each
round), and reports medians and ratios. Nothing asserts on timings; each target
is printed as "met" or "NOT met" with the figure behind it.

    common.py         tables, targets, the round-robin runner, small statistics
    machine.py        the description of the machine a run happened on
    servers.py        the three servers compared over HTTP, each in its own process
    http_auth.py      1. auth overhead over real HTTP: latency and throughput
    middleware.py     2. the API-key middleware alone, in-process, 10 to 1,000,000 keys
    course.py         3. wall time to execute the solution notebooks
    offline_agent.py  4. the offline agent's demo query, cold and warm
    __main__.py       runs them, prints markdown, writes benchmarks/results.md
"""
