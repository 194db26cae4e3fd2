"""Spend consent: the one place that decides whether a paid call may go ahead without asking the user.

Every tool that spends takes `confirm_spend_usd` and, once it knows its estimate and before anything is
submitted, calls `consent(...)`:

    if (ask := await consent(ctx, state, Spend(est, model, what), confirm_spend_usd)) is not None:
        return ask

The user is asked when the estimate is above AIVP_CONFIRM_ABOVE_USD (default $1.00; 0 = every paid call;
negative = never) or when the call would take this caller's spend since the server started (its session)
past AIVP_SESSION_BUDGET_USD. The question goes through elicitation in the SDK's resolver form, so it
works in both protocol eras: on 2026-07-28 `consent` returns an InputRequiredResult that the tool returns
(the client asks the user and calls again with the answer, re-running the tool up to this point); on
2025-11-25 it asks over the session and waits. A decline, a cancel or no answer refuses the call with
nothing submitted. A client that cannot show a question must pass `confirm_spend_usd` >= the estimate,
and the refusal says exactly that. Dry runs and plans never get here; AIVP_BUDGET_USD still applies in
the job runner on top.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import AcceptedElicitation, build_resolver_plans, resolve_arguments
from mcp.shared.exceptions import MCPError
from mcp.types import InputRequiredResult
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from ..domain.batch import Item
from ..domain.studio import Studio
from ..jobs import JobRequest

log = logging.getLogger("aivp.consent")
ANSWER_TIMEOUT_S = 300.0  # 2025-11-25: how long the call waits for the user's answer
MODERN = "2026-07-28"  # from this version a question is a result the client answers by calling again

ConfirmSpend = Annotated[float | None, Field(ge=0, description="Only after a consent refusal.")]


class SpendConsent(BaseModel):
    """What the user answers (a flat schema, as elicitation requires)."""

    approve: bool = Field(description="Go ahead and pay for it?")


class AskToSpend:
    """The resolver that asks. Module level (resolver types must resolve under `from __future__ import
    annotations`); its question is built from the call's arguments only, so every round asks the same one."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __call__(self) -> SpendConsent | Elicit[SpendConsent]:
        return Elicit(self.message, SpendConsent)


@dataclass(frozen=True)
class Spend:
    """What a call is about to pay for."""

    estimate_usd: float
    model: str  # the model's name, or "several models"
    what: str  # what will be made, e.g. "image output (T2I; 1 image(s) x $0.15) -> image/frames/shot-01-ff.png"


def of_request(req: JobRequest) -> Spend:
    """The Spend of one job request."""
    b = req.built
    where = f" -> {', '.join(req.targets)}" if req.targets else ""
    what = f"{req.kind} output ({req.mode}; {req.estimate.detail}){where}"
    return Spend(req.estimate.usd, f"{b.label} via {b.route.provider}", what)


def of_items(items: Iterable[Item], what: str) -> Spend:
    """The Spend of the jobs one call starts as a run (a batch, a sheet, candidates): every item still to make."""
    reqs = [item.make()[0] for item in items if item.make is not None and item.status == "waiting"]
    models = sorted({r.built.label for r in reqs})
    more = ", ..." if len(models) > 3 else ""
    model = models[0] if len(models) == 1 else f"{len(models)} models ({', '.join(models[:3])}{more})"
    return Spend(sum(r.estimate.usd for r in reqs), model, what)


def cents(usd: float) -> float:
    """An estimate shown to the user and asked of confirm_spend_usd: rounded up to the cent."""
    return math.ceil(round(usd * 100, 6)) / 100


def reason(state: Studio, estimate_usd: float) -> str | None:
    """Why this call needs the user's consent, or None when it may go ahead."""
    s = state.settings
    if s.confirm_above_usd >= 0 and (s.confirm_above_usd == 0 or estimate_usd > s.confirm_above_usd):
        return ("every paid call is confirmed (AIVP_CONFIRM_ABOVE_USD=0)" if s.confirm_above_usd == 0 else
                f"it costs more than ${s.confirm_above_usd:.2f} (AIVP_CONFIRM_ABOVE_USD)")
    if s.session_budget_usd is not None:
        spent = state.ledger.spend_since(state.started_at, state.caller)
        if spent + estimate_usd > s.session_budget_usd:
            limit = s.session_budget_usd
            return f"it would take this session past its ${limit:.2f} limit (AIVP_SESSION_BUDGET_USD)"
    return None


def can_ask(ctx: Context[Any, Any]) -> bool:
    """The client declared form elicitation and this connection can carry a question."""
    caps = ctx.client_capabilities
    form = caps is not None and caps.elicitation is not None and (
        caps.elicitation.form is not None or caps.elicitation.url is None)
    if not form:
        return False
    version = ctx.protocol_version
    return bool(version and is_version_at_least(version, MODERN)) or ctx.session.can_send_request


async def consent(ctx: Context[Any, Any], state: Studio, spend: Spend,
                  confirm_spend_usd: float | None) -> InputRequiredResult | None:
    """None: go ahead. An InputRequiredResult: return it from the tool (the client asks, then calls again).
    Raises ToolError when the call must not be submitted (declined, unanswered, or no way to ask)."""
    why = reason(state, spend.estimate_usd)
    if why is None:
        return None
    shown = cents(spend.estimate_usd)
    if not can_ask(ctx):
        if confirm_spend_usd is not None and confirm_spend_usd >= shown - 1e-9:
            log.info("spend of $%.2f on %s confirmed by confirm_spend_usd", shown, spend.model)
            return None
        given = f" confirm_spend_usd={confirm_spend_usd:g} is below it." if confirm_spend_usd is not None else ""
        raise ToolError(
            f"Not submitted: {spend.what} with {spend.model} is estimated at ${shown:.2f}; aivp asks first because "
            f"{why}, and this client cannot ask the user.{given} Ask the user whether to spend ${shown:.2f}; if they "
            f"agree, call again with the same arguments and confirm_spend_usd={shown:.2f}. Nothing was charged.")
    message = f"Spend about ${shown:.2f}? aivp would make {spend.what} with {spend.model}. Asked because {why}."
    if all(state.settings.sandboxed(p) for p in state.settings.urls):  # every provider here is a sandbox
        message += " (Sandbox: placeholders, nothing is charged; the amount is what the real models would cost.)"
    params = {"consent": (Resolve(AskToSpend(message)), True)}
    try:
        with anyio.fail_after(ANSWER_TIMEOUT_S):
            out = await resolve_arguments(params, build_resolver_plans(params, set()), {}, ctx)
    except TimeoutError:
        raise ToolError(f"Not submitted: nobody answered whether to spend ${shown:.2f} on {spend.model}. Nothing "
                        "was charged; call again to ask again.") from None
    except MCPError as exc:
        log.info("the spend question could not be asked: %s", exc)
        raise ToolError(f"Not submitted: the question whether to spend ${shown:.2f} could not be shown ({exc}). "
                        f"Ask the user; if they agree, call again with confirm_spend_usd={shown:.2f}. Nothing was "
                        "charged.") from None
    if isinstance(out, InputRequiredResult):
        return out
    answer = out["consent"]
    if isinstance(answer, AcceptedElicitation) and isinstance(answer.data, SpendConsent) and answer.data.approve:
        log.info("spend of $%.2f on %s approved by the user", shown, spend.model)
        return None
    said = {"accept": "said no to", "decline": "declined", "cancel": "did not answer"}.get(answer.action, "declined")
    raise ToolError(f"Not submitted: the user {said} spending ${shown:.2f} on {spend.what} with {spend.model}. Nothing "
                    "was charged. Ask what they would like instead (a cheaper model, fewer outputs, a dry_run).")
