"""Schedules of a storyboard's step DAG for bench_storyboard.py: what a perfect scheduler could do,
what happened in a run, and a bench-only scheduler that gives slots to the longest chain first.

Steps are keys; `deps` maps each to the keys it waits for (the `waits_for` of `run_storyboard`'s
steps). Measured times are dicts per step on time.monotonic(): "in" (slot taken), "sub" / "fin"
(submitted / finished at the sandbox), "file" (output written), "out" (slot given back).
"""

from __future__ import annotations

import collections
import heapq
from typing import Any


def dag_of(steps: list[dict[str, Any]]) -> tuple[list[str], dict[str, list[str]]]:
    """The steps still to do, in plan order, and what each waits for among them."""
    todo = [s["key"] for s in steps if s["status"] not in ("exists", "invalid")]
    keep = set(todo)
    return todo, {s["key"]: [d for d in s["waits_for"] if d in keep] for s in steps if s["key"] in keep}


def levels(order: list[str], deps: dict[str, list[str]], dur: dict[str, float] | None = None) -> dict[str, float]:
    """Length of the longest path from each step to the end, itself included (in jobs, or seconds with `dur`)."""
    users: dict[str, list[str]] = collections.defaultdict(list)
    for k, ds in deps.items():
        for d in ds:
            users[d].append(k)
    memo: dict[str, float] = {}

    def level(k: str) -> float:
        if k not in memo:
            memo[k] = (dur[k] if dur else 1) + max((level(u) for u in users[k]), default=0)
        return memo[k]

    for k in order:
        level(k)
    return memo


def simulate(order: list[str], deps: dict[str, list[str]], slots: int, dur: dict[str, float], priority: str) -> float:
    """Makespan of a list scheduler with zero overhead: whenever a slot is free it starts a ready step.
    'level' takes the ready step with the longest path to the end first (highest level first; optimal
    for unit jobs on in-trees (Hu), and within a job of the bounds on DAGs like these); 'fifo' takes them
    in the order they became ready, ties in plan order (what aivp's anyio.Semaphore in front of every
    step gives)."""
    lv = levels(order, deps, dur)
    index = {k: i for i, k in enumerate(order)}
    done_at: dict[str, float] = {}
    ready_at: dict[str, float] = {}
    running: list[tuple[float, str]] = []
    left = list(order)
    now = 0.0
    while left or running:
        for end, k in [r for r in running if r[0] <= now + 1e-9]:
            done_at[k] = end
            running.remove((end, k))
        ready = [k for k in left if all(d in done_at for d in deps[k])]
        for k in ready:
            ready_at.setdefault(k, now)
        ready.sort(key=(lambda k: (-lv[k], index[k])) if priority == "level" else (lambda k: (ready_at[k], index[k])))
        for k in ready[:slots - len(running)]:
            running.append((now + dur[k], k))
            left.remove(k)
        if not running:
            break  # a cycle or a missing dependency: nothing more can start
        now = min(end for end, _ in running)
    return max(done_at.values(), default=0.0)


# ------------------------------------------------------------------ what happened in a run


def inversions(times: dict[str, dict[str, float]], ready: dict[str, float], lv: dict[str, float]) -> list[tuple[str, str]]:
    """Slots given to a step while another ready step with a longer chain behind it waited on:
    (the step that got the slot, the longest-chain step that kept waiting)."""
    out = []
    for k, v in times.items():
        waiting = [j for j in times if j != k and ready[j] <= v["in"] < times[j]["in"] and lv[j] > lv[k]]
        if waiting:
            out.append((k, max(waiting, key=lambda j: lv[j])))
    return out


def actual_chain(times: dict[str, dict[str, float]], deps: dict[str, list[str]]) -> list[tuple[str, str, float]]:
    """The chain that set the run's length, traced back from the step that finished last: each step
    started when either its last dependency gave back its slot or another step gave back the slot it
    took. Returns (step, what it waited for, gap in s) from the first to the last."""
    k = max(times, key=lambda x: times[x]["out"])
    chain = []
    while True:
        t_in = times[k]["in"]
        dep = max((d for d in deps[k] if d in times), key=lambda d: times[d]["out"], default=None)
        freed = max((j for j in times if j != k and times[j]["out"] <= t_in + 1e-6), key=lambda j: times[j]["out"],
                    default=None)
        if dep is not None and (freed is None or times[dep]["out"] >= times[freed]["out"] - 0.005):
            chain.append((k, f"dependency {dep}", t_in - times[dep]["out"]))
            k = dep
        elif freed is not None and t_in - times[freed]["out"] < 0.25:
            chain.append((k, f"a slot ({freed})", t_in - times[freed]["out"]))
            k = freed
        else:
            chain.append((k, "the start", 0.0))
            break
    return chain[::-1]
