"""references/models.md, generated from the catalog (CI fails when the file is stale)."""

from __future__ import annotations

from . import catalog, effective_params, effective_pricing
from .pricing import price_text as pricing_text
from .search import param_card, price_text, summary

HEADER = (
    "<!-- Generated from server/aivp/catalog/models.json by `aivp models --markdown references/models.md`. "
    "Do not edit by hand. -->\n"
)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    models = catalog().models
    out = [HEADER, "# Models\n",
           "Every model aivp knows, with what it does and what it costs. Prices are the providers' list prices as "
           "recorded in the catalog; a typical call is one image at the default size or a clip of the default "
           "length (a clip whose length the model picks is counted at its longest). These are the curated models: "
           "any other fal endpoint or Replicate model also runs, checked against its live schema and priced from "
           "fal's pricing API (`search_models` lists them). `search_models(model=...)` returns the same card as JSON.\n",
           "| Model | Kind | Tasks | Price | Typical call | Tier | Consistency | Tags |",
           "|---|---|---|---|---|---|---|---|"]
    for m in sorted(models, key=lambda m: (m.kind, m.id)):
        s = summary(m)
        if not m.active:
            out.append(f"| `{m.id}` | {m.kind} | retired | - | - | - | - | - |")
            continue
        out.append(f"| `{m.id}` | {m.kind} | {', '.join(s['tasks'])} | {_cell(price_text(m))} | "
                   f"${s['typical_cost_usd']:.3f} | {m.tier} | {m.consistency} | {', '.join(m.tags)} |")
    for m in sorted(models, key=lambda m: (m.kind, m.id)):
        out += ["", f"## {m.name} (`{m.id}`)", "", m.summary, ""]
        if m.retired is not None:
            nxt = ", ".join(f"{task}: `{mid}`" for task, mid in m.retired.successors.items())
            out.append(f"**Retired** since {m.retired.on}: {_cell(m.retired.reason)}. Calls are refused before "
                       f"anything is sent; successors: {nxt}.  ")
        if m.aliases:
            out.append(f"Aliases: {', '.join(f'`{a}`' for a in m.aliases)}.  ")
        out.append(f"Vendor {m.vendor}; tier {m.tier}; speed {m.speed}/3; quality {m.quality}/5; "
                   f"consistency {m.consistency}.  ")
        limits = m.limits.model_dump(exclude_defaults=True)
        if limits:
            out.append("Limits: " + "; ".join(f"{k} {v}" for k, v in limits.items()) + ".  ")
        if m.notes:
            out.append(f"Notes: {_cell(m.notes)}  ")
        for e in m.endpoints:
            for r in e.routes:
                tasks = ", ".join(e.tasks)
                pricing = effective_pricing(m, e, r)
                out += ["", f"### {tasks}: `{r.endpoint}` ({r.provider}, output {e.output})", "",
                        f"Price: {_cell(pricing_text(pricing, with_note=True))}", "",
                        "| Parameter | Type | Role | Required | Default | Allowed |", "|---|---|---|---|---|---|"]
                for name, p in effective_params(m, e, r).items():
                    c = param_card(name, p)
                    allowed = ""
                    if "values" in c:
                        allowed = ", ".join(str(v) for v in c["values"])
                    elif "min" in c or "max" in c:
                        allowed = f"{c.get('min', '')}..{c.get('max', '')}"
                    elif "presets" in c:
                        allowed = ", ".join(c["presets"]) + (", WxH" if p.custom_size else "")
                    if "max_items" in c:
                        allowed = (allowed + f" up to {c['max_items']} items").strip()
                    out.append(f"| `{name}` | {p.type} | {p.role or ''} | {'yes' if p.required else ''} | "
                               f"{_cell(p.default) if p.default is not None else ''} | {_cell(allowed)} |")
        if m.source:
            out += ["", f"Source: {_cell(m.source)}"]
    return "\n".join(out) + "\n"
