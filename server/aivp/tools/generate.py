"""generate_image, edit_image, generate_video: thin adapters from flat arguments to the job runner."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import anyio

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import Field

from .common import JobResult, as_tool_result, boundary, follow, state_of
from .ui import review_line, ui_meta
from .consent import ConfirmSpend, consent, of_request
from ..providers import PROVIDER_NAMES
from ..domain.calls import edit_call, image_call, video_call
from ..domain.prepare import Call, prepare_call

PAID = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)

Prompt = Annotated[str, Field(min_length=1, description="@Name adds a registered character/location.")]
Model = Annotated[str | None, Field(description="Catalog id or provider endpoint; omit: aivp picks.")]
Refs = Annotated[list[str] | None, Field(description="Images (path, URL, data: URI); character sheets first.")]
Ratio = Annotated[str | None, Field(description="e.g. 16:9")]
Seed = int | None
Negative = str | None
Output = Annotated[str | None, Field(description="Project path (default image/generated/).")]
VideoOutput = Annotated[str | None, Field(description="Project path (default video/generated/).")]
Overwrite = Annotated[bool, Field(description="Replace a file at output (else add -2).")]
Options = Annotated[dict[str, Any] | None, Field(description="Native parameters (model card).")]
WaitS = Annotated[float | None, Field(ge=0, le=600, description="Default 45, then a job_id.")]
Fresh = Annotated[bool, Field(description="Pay again for an identical finished request.")]
ProviderArg = Annotated[Literal[PROVIDER_NAMES] | None, Field()]  # type: ignore[valid-type]
Variations = Annotated[dict[str, str] | None, Field(description="e.g. {\"Mara\": \"night\"}")]
Tier = Annotated[Literal["fast", "standard", "premium"] | None, Field(description="No model: cheapest of tier.")]
Consistency = Annotated[Literal["none", "weak", "medium", "strong"] | None, Field(description="No model: consistency needed.")]
DryRun = Annotated[bool, Field(description="Price and check; send nothing.")]
MaxCost = Annotated[float | None, Field(gt=0, description="USD cap; needed if unpriced.")]


def register(mcp: MCPServer[Any]) -> None:
    @mcp.tool(title="Generate image", annotations=PAID)
    @boundary
    async def generate_image(
        prompt: Prompt,
        ctx: Context[Any, Any],
        model: Model = None,
        references: Refs = None,
        aspect_ratio: Ratio = None,
        size: Annotated[str | None, Field(description="Preset (square_hd, landscape_16_9...), WxH or 1K/2K/4K.")] = None,
        num_images: Annotated[int, Field(ge=1, le=4, description="Each is billed.")] = 1,
        seed: Seed = None,
        negative_prompt: Negative = None,
        output: Output = None,
        overwrite: Overwrite = False,
        options: Options = None,
        wait_s: WaitS = None,
        fresh: Fresh = False,
        dry_run: DryRun = False,
        max_cost_usd: MaxCost = None,
        provider: ProviderArg = None,
        variations: Variations = None,
        tier: Tier = None,
        consistency: Consistency = None,
        confirm_spend_usd: ConfirmSpend = None,
    ) -> Annotated[CallToolResult, JobResult] | InputRequiredResult:
        """Make keyframes, character sheets, style frames and location plates from text, optionally guided by
        reference images. Saved in the project with a record in image/log/;
        a long job returns a job_id for queue_status. Checked and priced before any charge."""
        call = image_call(prompt=prompt, model=model, references=references, aspect_ratio=aspect_ratio, size=size,
                          num_images=num_images, seed=seed, negative_prompt=negative_prompt, output=output,
                          overwrite=overwrite, options=options, fresh=fresh, provider=provider, variations=variations,
                          tier=tier, consistency=consistency, max_cost_usd=max_cost_usd)
        return await _run(ctx, call, wait_s, dry_run, confirm_spend_usd)

    @mcp.tool(title="Edit image", annotations=PAID)
    @boundary
    async def edit_image(
        image: Annotated[str, Field(min_length=1, description="Path, URL or data: URI.")],
        ctx: Context[Any, Any],
        prompt: Annotated[str | None, Field(description="The change (not needed for upscale, remove_background).")] = None,
        operation: Annotated[Literal["edit", "inpaint", "upscale", "restyle", "remove_background"], Field(description="inpaint changes the white area of mask; restyle uses strength; remove_background gives white, not alpha.")] = "edit",
        mask: Annotated[str | None, Field(description="inpaint: white = change.")] = None,
        references: Refs = None,
        strength: Annotated[float | None, Field(ge=0, le=1, description="restyle: how much to change.")] = None,
        upscale_factor: Annotated[float | None, Field(gt=0, le=8, description="upscale, where the model allows.")] = None,
        model: Model = None,
        aspect_ratio: Ratio = None,
        size: Annotated[str | None, Field(description="Preset or WxH.")] = None,
        num_images: Annotated[int, Field(ge=1, le=4, description="Each is billed.")] = 1,
        seed: Seed = None,
        negative_prompt: Negative = None,
        output: Output = None,
        overwrite: Overwrite = False,
        options: Options = None,
        wait_s: WaitS = None,
        fresh: Fresh = False,
        dry_run: DryRun = False,
        max_cost_usd: MaxCost = None,
        provider: ProviderArg = None,
        variations: Variations = None,
        confirm_spend_usd: ConfirmSpend = None,
    ) -> Annotated[CallToolResult, JobResult] | InputRequiredResult:
        """Edit (describe the change; no mask needed), inpaint, restyle, upscale or remove the background of an
        image, into a new file. References compose elements in ("the jacket from image 2")."""
        call = edit_call(image=image, prompt=prompt, operation=operation, mask=mask, references=references,
                         strength=strength, upscale_factor=upscale_factor, model=model, aspect_ratio=aspect_ratio,
                         size=size, num_images=num_images, seed=seed, negative_prompt=negative_prompt, output=output,
                         overwrite=overwrite, options=options, fresh=fresh, provider=provider, variations=variations,
                         max_cost_usd=max_cost_usd)
        return await _run(ctx, call, wait_s, dry_run, confirm_spend_usd)

    @mcp.tool(title="Generate video", annotations=PAID, meta=ui_meta("clips"))
    @boundary
    async def generate_video(
        prompt: Prompt,
        ctx: Context[Any, Any],
        model: Model = None,
        image: Annotated[str | None, Field(description="Start frame (path, URL, data: URI), e.g. image/frames/shot-01-ff.png.")] = None,
        end_image: Annotated[str | None, Field(description="End frame (first-last-frame models).")] = None,
        references: Annotated[list[str] | None, Field(description="Subject images (reference-to-video models).")] = None,
        video: Annotated[str | None, Field(description="Source (video-to-video models).")] = None,
        duration: Annotated[float | None, Field(gt=0, le=60, description="Seconds; the model card lists valid ones.")] = None,
        aspect_ratio: Ratio = None,
        resolution: Annotated[str | None, Field(description="e.g. 720p, 1080p")] = None,
        audio: Annotated[bool | None, Field(description="Native sound (default per model; on for quoted dialogue).")] = None,
        camera_fixed: Annotated[bool | None, Field(description="Tripod shot.")] = None,
        seed: Seed = None,
        negative_prompt: Negative = None,
        output: VideoOutput = None,
        overwrite: Overwrite = False,
        options: Options = None,
        wait_s: WaitS = None,
        fresh: Fresh = False,
        dry_run: DryRun = False,
        max_cost_usd: MaxCost = None,
        provider: ProviderArg = None,
        variations: Variations = None,
        confirm_spend_usd: ConfirmSpend = None,
    ) -> Annotated[CallToolResult, JobResult] | InputRequiredResult:
        """Make a clip from text, animate a keyframe (start and optional end frame) or follow reference images.
        Video takes 10 s to 5 min: past wait_s this returns a job_id; queue_status(job_id, wait_s=30) collects it.
        The clip is checked and saved with a record in video/log/."""
        call = video_call(prompt=prompt, model=model, image=image, end_image=end_image, references=references,
                          video=video, duration=duration, aspect_ratio=aspect_ratio, resolution=resolution, audio=audio,
                          camera_fixed=camera_fixed, seed=seed, negative_prompt=negative_prompt, output=output,
                         overwrite=overwrite, options=options, fresh=fresh, provider=provider, variations=variations,
                         max_cost_usd=max_cost_usd)
        return await _run(ctx, call, wait_s, dry_run, confirm_spend_usd)


async def _run(ctx: Context[Any, Any], call: Call, wait_s: float | None, dry_run: bool = False,
               confirm_spend_usd: float | None = None) -> CallToolResult | InputRequiredResult:
    state = state_of(ctx)
    req, why = await prepare_call(state, call, dry_run=dry_run)
    if dry_run:
        return _estimate_only(req, why, state.settings.sandboxed(req.built.route.provider))
    if (ask := await consent(ctx, state, of_request(req), confirm_spend_usd)) is not None:
        return ask
    started = await state.runner.start(req, started_by=state.caller)
    row = await follow(ctx, started, wait_s)
    reused = not started.created and row.state == "completed" and started.row.state == "completed"
    joined = not started.created and started.row.active
    note = f"Model: {why}; estimate {req.estimate.shown} ({req.estimate.detail})."
    if joined:
        note += " An identical job was already running; this call joined it instead of paying again."
    if call.task == "remove-background" and row.state == "completed" and row.outputs:
        note += await _cutout_note(state.project.root / row.outputs[0]["path"])
    if call.tool == "generate_video" and row.state == "completed" and row.outputs:
        note += f"\n{review_line(ctx, state.project.root)}"
    return await as_tool_result(state, row, reused=reused, note=note)


async def _cutout_note(path: Path) -> str:
    """What remove_background really gave: the default model paints the background white."""
    from ..media import has_alpha

    try:
        alpha = await anyio.to_thread.run_sync(has_alpha, path)
    except Exception:  # a note must never fail a paid result
        return ""
    return (" The result is a cutout with a transparent background." if alpha else
            " The background is now plain white, not transparent (this model returns an opaque image).")


def _estimate_only(req: Any, why: str, sandbox: bool = False) -> CallToolResult:
    from ..jobs import record_payload

    b = req.built
    result = JobResult(
        job_id="", status="estimate", done=True, model=b.model.id, endpoint=b.route.endpoint, provider=b.route.provider,
        estimate_usd=round(req.estimate.usd, 4) if req.estimate.known else None, cost_usd=0.0,
        warnings=b.warnings if req.estimate.known else [*b.warnings, f"Price unknown: {req.estimate.detail}."],
        request=record_payload(b.payload),
        next_step="Nothing was sent or charged. Call again without dry_run to run it.",
    )
    cost = f"would cost about ${req.estimate.usd:.3f}" if req.estimate.known else "has an unknown price"
    text = (f"Dry run: {b.label} via {b.route.provider} ({b.route.endpoint}) {cost} "
            f"({req.estimate.detail}). Model: {why}. Nothing was sent.")
    if sandbox:
        text += f" {b.route.provider} is aivp's sandbox here: a run makes a placeholder and charges nothing."
        result.sandbox = True
    return CallToolResult(content=[TextContent(text=text)], structured_content=result.model_dump(mode="json"))
