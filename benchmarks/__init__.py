"""Benchmarks for the course: `python -m benchmarks [--quick] [--only NAME]`.

Why they look the way they do: the machine is shared and noisy, so no figure
here is a single absolute time. Every comparison runs its variants side by side
in one process run, round-robin over many short rounds (the order rotated each
round), and reports medians and ratios. Nothing asserts on timings; each target
is printed as "met" or "NOT met" with the figure behind it.

    common.py         tables, targets, the round-robin runner, small statistics
    machine.py        the description of the machine a run happened on
    servers.py        the servers compared over HTTP, each in its own process (`serve` as users run it too)
    raw_load.py       a light HTTP/1.1 keep-alive load generator, so throughput measures the server
    http_auth.py      1. auth over real HTTP: latency, throughput, refusals, memory per 1,000 refusals
    middleware.py     2. the API-key middleware alone, in-process, 10 to 1,000,000 keys; refusal memory
    course.py         3. wall time to execute the solution notebooks
    offline_agent.py  4. the offline agent: demo query cold and warm, `demo` cold, first tool call
    cluster.py        5. the cluster: Redis-backed keys, revocation across replicas, nginx in front
    instructions.py   6. instructions per request under valgrind: deterministic, resolves a 2 % difference
    __main__.py       runs them, prints markdown, writes benchmarks/results.md
    profile_layers.py not part of the run: where a secured request's extra CPU goes, layer by layer
"""
