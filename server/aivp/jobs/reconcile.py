"""Settling a submit whose answer was lost: the job is looked up at its provider, then adopted, released
or explained (never submitted again on a guess, which could charge twice)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import AivpError
from ..ledger import StateChanged
from ..providers.base import Lookup
from .drive import JobDriver, dashboard


class Reconciler(JobDriver):
    """The driver plus `settle`: the runner's answer to 'unknown'."""

    async def settle(self, job_id: str) -> str:
        """Look an 'unknown' job (its submit's answer was lost) up at the provider, and settle it.

        Found once: followed from there, landing at the requested output with its cost. Not there well
        after the submit: failed as never submitted, its estimate released. Several, or no way to look
        (BytePlus keeps no list; a key without the right scope): left unknown, saying so. Returns what happened.
        """
        row = self.get(job_id)
        if row.state != "unknown":
            return f"Job {row.id} is {row.state}."
        provider = self.providers[row.provider]
        sent_at = _submit_time(self.ledger.events(row.id)) or _parse_time(row.created_at)
        now = datetime.now(UTC)
        try:
            found = await provider.find_submission(row.endpoint, row.request, sent_at - timedelta(seconds=60),
                                                   now + timedelta(seconds=5), known=lambda rid: self.ledger.find_request(
                                                       row.provider, rid) is not None)
        except AivpError as exc:
            found = Lookup("cannot", reason=str(exc))
        if found.outcome == "found" and found.handle is not None:
            try:
                self.ledger.update(row.id, state="queued", request_id=found.handle.request_id,
                                   handle=found.handle.to_json(), submitted_at=_iso(sent_at), finished_at=None,
                                   error=None, error_code=None, event="reconciled", expect=("unknown",))
            except StateChanged:
                return f"Job {row.id} was settled by another call meanwhile."
            self._live.restart(row.id)
            self._spawn(row.id)
            return (f"Found the request at {row.provider} ({found.handle.request_id}): aivp follows it and saves its "
                    "result at the output asked for.")
        if found.outcome == "none" and (now - sent_at).total_seconds() >= self.settings.settle_after_s:
            self._finish(row.id, "failed", cost_usd=0.0, error_code="not_submitted", error=(
                f"aivp looked for this request at {row.provider} (sent {_iso(sent_at)}) and it is not there: the submit "
                "never reached the provider, and nothing was charged. Call the tool again."))
            return f"Not at {row.provider}: settled as never submitted; its estimate no longer counts as spent."
        said = {
            "none": f"{row.provider} does not list it yet; aivp looks again when asked (queue_status) in a minute",
            "several": (f"{found.count} requests at {row.provider} match it, so aivp cannot tell which is this one; "
                        f"adopt the right one with queue_status(model=..., request_id=...)"),
            "cannot": f"aivp cannot look it up at {row.provider} ({found.reason})",
        }[found.outcome]
        self.ledger.update(row.id, event="lookup", detail=said)
        return f"{said}. Check {dashboard(provider)}; to submit it again anyway, call the tool with fresh=true."


def _submit_time(events: list[dict[str, Any]]) -> datetime | None:
    """When the submit left: the last 'submitting' event of the job."""
    times = [_parse_time(e["at"]) for e in events if e.get("state") == "submitting"]
    return times[-1] if times else None


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
