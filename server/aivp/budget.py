"""The spending cap: a call or a storyboard run that would pass it is refused before anything is sent.

Spent is what finished jobs cost; committed is the estimate of jobs still running and of submits whose
answer was lost (they may have been billed). The cap is AIVP_BUDGET_USD, else aivp.toml's budget_usd.
"""

from __future__ import annotations

from .errors import BudgetExceeded

BUDGET_HOW = "AIVP_BUDGET_USD or aivp.toml"


def check_budget(spend: dict[str, float], cost: float, budget: float | None, *, what: str = "call",
                 advice: str = "Raise the budget or pick a cheaper model.") -> None:
    """Raise BudgetExceeded when spent + committed + `cost` would pass `budget` (None: no cap)."""
    if budget is None:
        return
    if spend["spent_usd"] + spend["committed_usd"] + cost > budget + 1e-9:
        raise BudgetExceeded(
            f"This {what} would cost about ${cost:.2f}; with ${spend['spent_usd']:.2f} spent and "
            f"${spend['committed_usd']:.2f} in running jobs it would pass the ${budget:.2f} budget ({BUDGET_HOW}). "
            f"Nothing was sent. {advice}")
