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


# ------------------------------------------------------------------ what-if: slots by longest chain first


class PrioritySlots:
    """A semaphore that hands each free slot to the waiter with the smallest priority tuple. A waiter
    yields once before the slots are handed out, so steps that become ready at the same moment (all
    the roots at the start) compete on priority, not on who asked first."""

    def __init__(self, n: int) -> None:
        self.free = n
        self.waiters: list[tuple[tuple[float, int], int, Any]] = []
        self.seq = 0

    async def acquire(self, priority: tuple[float, int]) -> None:
        import anyio
        import anyio.lowlevel

        event = anyio.Event()
        self.seq += 1
        entry = (priority, self.seq, event)
        heapq.heappush(self.waiters, entry)
        try:
            await anyio.lowlevel.checkpoint()
            self._dispatch()
            await event.wait()
        except BaseException:
            if event.is_set():
                self.release()  # the slot was handed over as we were cancelled: pass it on
            else:
                self.waiters.remove(entry)
                heapq.heapify(self.waiters)
            raise

    def _dispatch(self) -> None:
        while self.free > 0 and self.waiters:
            self.free -= 1
            heapq.heappop(self.waiters)[2].set()

    def release(self) -> None:
        self.free += 1
        self._dispatch()


def priority_execute() -> Any:
    """aivp.pipeline.run.execute with one change, for --what-if only: a step waiting for a slot gets it by
    the longest chain of steps still behind it (then plan order) instead of first come, first served."""
    import anyio

    from aivp.errors import AivpError
    from aivp.ledger import now_iso
    from aivp.pipeline import run as R

    async def execute(state: Any, run: Any) -> None:
        finished = {key: anyio.Event() for key in run.steps}
        todo = [k for k, st in run.steps.items() if st.status not in ("exists", "invalid")]
        deps = {k: [d for d in run.steps[k].deps if d in todo] for k in todo}
        lv = levels(todo, deps)
        index = {k: i for i, k in enumerate(run.steps)}
        slots = PrioritySlots(max(1, run.concurrency))

        async def one(step: Any) -> None:
            try:
                for dep in step.deps:
                    await finished[dep].wait()
                    before = run.steps[dep]
                    if before.status in R.FAILED:
                        step.status = "blocked"
                        step.error = f"needs {', '.join(before.targets)}, which failed: {before.error}"
                        R._set_rows(state, step, "failed")
                        await run.emit(step, f"blocked: {before.key} failed")
                        return
                if step.status in ("exists", "invalid"):
                    return
                await slots.acquire((-lv.get(step.key, 1), index[step.key]))
                try:
                    await R._run_step(state, run, step)
                finally:
                    slots.release()
            except AivpError as exc:
                step.status, step.error = "failed", str(exc)
                R._set_rows(state, step, "failed")
                await run.emit(step, f"failed: {exc}")
            finally:
                finished[step.key].set()

        try:
            async with anyio.create_task_group() as tg:
                for step in run.steps.values():
                    tg.start_soon(one, step)
        finally:
            statuses = {s.status for s in run.steps.values()}
            run.status = "done" if not statuses & set(R.FAILED) else (
                "failed" if statuses <= {*R.FAILED, "exists"} else "partial")
            if not statuses <= {"done", "exists", *R.FAILED}:
                run.status = "stopped"
            run.finished_at = now_iso()
            run.done.set()

    return execute
