"""search_models' text: the same facts as its structured content, as compact lines instead of JSON.

Many hosts put only a result's text into the agent's context; a JSON dump there doubled every answer
(6.7k text + 5k structured for one task search). The text names every model, its price, typical
call and fitness, and a card lists every native parameter with its values; ids and numbers stay
exact so an agent can act on the text alone.
"""

from __future__ import annotations

from typing import Any

from ..catalog.schema import ROLE_ARG


def search_text(models: list[dict[str, Any]], live: list[dict[str, Any]], next_cursor: str | None,
                note: str | None, detail: dict[str, Any] | None) -> str:
    parts: list[str] = []
    if models:
        parts.append(f"{len(models)} curated model{'s' if len(models) != 1 else ''}, best first:")
        parts += [model_line(m) for m in models]
    if live:
        parts.append("From fal's live model list (run them by id; search_models(model=id) reads the card):")
        parts += [f"- {r['id']} ({r.get('category') or '?'}, {r.get('price') or 'price unknown'}): "
                  f"{r.get('description') or r.get('name') or ''}".rstrip(": ") for r in live]
    if next_cursor:
        parts.append(f"More live results: call again with cursor={next_cursor!r}.")
    if note:
        parts.append(f"Note: {note}")
    if detail is not None:
        parts.append(card_text(detail))
    if not parts:
        parts.append("No model matches. Loosen the filters (max_price_usd, capabilities, tier) or search by task only.")
    return "\n".join(parts)


def model_line(m: dict[str, Any]) -> str:
    fit = f"{m.get('tier')}, speed {m.get('speed')}/5, quality {m.get('quality')}/5, consistency {m.get('consistency')}"
    cost = f"typical call ${m['typical_cost_usd']:.2f} ({m.get('typical_call')})" if "typical_cost_usd" in m else ""
    flags = []
    if m.get("status") == "retired":
        flags.append("RETIRED")
    if m.get("usable_now") is False:
        flags.append(f"no key for {'/'.join(m.get('providers') or [])}")
    tags = f" Tags: {', '.join(m['tags'])}." if m.get("tags") else ""
    head = f"- {m['id']} ({m.get('name')}; {m.get('kind')}: {', '.join(m.get('tasks') or [])})"
    return (f"{head}{' [' + '; '.join(flags) + ']' if flags else ''}: {m.get('summary') or ''} "
            f"{fit}. {m.get('price')}; {cost}.{tags}")


def card_text(d: dict[str, Any]) -> str:
    """One model's card: curated (endpoints with params) or live (one endpoint's params)."""
    if d.get("source") == "live":
        lines = [f"Card of {d['id']} (fal live model list; {d.get('category')}, {d.get('price')}, status "
                 f"{d.get('status')}): {d.get('description') or ''}", f"Endpoint {d.get('endpoint')}. Parameters:"]
        lines += [param_line(p) for p in d.get("params") or []]
        lines += [f"Schema problem: {d['schema_error']}"] if d.get("schema_error") else []
        return "\n".join(lines)
    lines = [f"Card of {model_line(d)[2:]}"]
    if d.get("aliases"):
        lines.append(f"Also called: {', '.join(d['aliases'])}.")
    if d.get("notes"):
        lines.append(f"Notes: {d['notes']}")
    limits = {k: v for k, v in (d.get("limits") or {}).items() if k != "notes"}
    if limits or (d.get("limits") or {}).get("notes"):
        notes = d["limits"].get("notes")
        lines.append("Limits: " + ". ".join(x for x in (kv(limits), notes) if x))
    for e in d.get("endpoints") or []:
        also = f" (also {', '.join(e['also'])})" if e.get("also") else ""
        lines.append(f"{e['task']}{also} via {e['provider']}: {e['endpoint']}; price {kv(e.get('pricing') or {})}")
        lines += [param_line(p) for p in e.get("params") or []]
        for rule in e.get("rules") or []:
            lines.append(f"  rule: {kv(rule)}")
    return "\n".join(lines)


def param_line(p: dict[str, Any]) -> str:
    bits = [str(p.get("type", "any"))]
    if p.get("required"):
        bits.append("required")
    if p.get("values"):
        bits.append("one of " + "|".join(str(v) for v in p["values"]))
    if p.get("min") is not None or p.get("max") is not None:
        bits.append(f"{_num(p.get('min'))}..{_num(p.get('max'))}")
    if p.get("min_items") is not None or p.get("max_items") is not None:
        bits.append(f"{p.get('min_items', 0)}..{p.get('max_items', '')} items")
    if p.get("presets"):
        bits.append("presets " + ", ".join(p["presets"]) + (" or {width, height}" if p.get("custom_size") else ""))
    if "default" in p:
        bits.append(f"default {p['default']}")
    arg = p.get("argument") or (ROLE_ARG.get(p["role"], p["role"]) if p.get("role") else None)
    via = f" (from the `{arg}` argument)" if arg and arg != p["name"] else ""
    desc = f": {p['description']}" if p.get("description") else ""
    return f"  {p['name']} [{', '.join(bits)}]{via}{desc}"


def kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items())


def _num(x: Any) -> str:
    return "" if x is None else f"{x:g}" if isinstance(x, float) else str(x)
