"""generate_image, edit_image, generate_video: thin adapters from flat arguments to the job runner."""

from __future__ import annotations

from typing import Annotated, Any, Literal

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

Prompt = Annotated[str, Field(min_length=1, description="What to make; @Name brings in a registered character or location (description + sheet). For video: scene, action, dialogue in quotes, camera, sound.")]
Model = Annotated[str | None, Field(description="Catalog id or alias, any fal endpoint id, or a Replicate owner/name[:version] (see search_models). Leave empty to let aivp choose.")]
Refs = Annotated[list[str] | None, Field(description="Reference images: project paths (uploaded for you), http(s) URLs or data: URIs. Character sheets first.")]
Ratio = Annotated[str | None, Field(description="Aspect ratio such as 16:9, 9:16, 1:1, 4:3, 3:4.")]
Seed = Annotated[int | None, Field(description="Seed for reproducible results, where the model takes one.")]
Negative = Annotated[str | None, Field(description="What to avoid, where the model takes a negative prompt.")]
Output = Annotated[str | None, Field(description="Project path for the result, e.g. image/frames/shot-01-ff.png or video/clips/shot-01.mp4. Default: image/generated/ or video/generated/.")]
Overwrite = Annotated[bool, Field(description="Replace an existing file at `output` (default: keep it and add -2, -3 ...).")]
Options = Annotated[dict[str, Any] | None, Field(description="Model-native parameters not covered above (e.g. safety_tolerance, cfg_scale); search_models(model=...) lists them with their valid values.")]
WaitS = Annotated[float | None, Field(ge=0, le=600, description="Seconds to wait for the result (default 45). Past it you get a job_id; the job keeps running and queue_status fetches it.")]
Fresh = Annotated[bool, Field(description="Pay for a new generation even if an identical request already finished (otherwise its files are returned free).")]
ProviderArg = Annotated[Literal[PROVIDER_NAMES] | None, Field(description="For models several providers serve (Seedream 4.5, FLUX): which one runs it. Default: AIVP_PROVIDERS, else whichever has a key.")]  # type: ignore[valid-type]
Variations = Annotated[dict[str, str] | None, Field(description="For @mentioned assets, the variation to use this time, e.g. {\"Mara\": \"night\"} (or write @Mara:night).")]
Tier = Annotated[Literal["fast", "standard", "premium"] | None, Field(description="With no model: pick the cheapest model of this tier.")]
Consistency = Annotated[Literal["none", "weak", "medium", "strong"] | None, Field(description="With no model: the character consistency the model must reach.")]
DryRun = Annotated[bool, Field(description="Check the arguments and return the model, the native input and the cost estimate without sending or spending anything.")]
MaxCost = Annotated[float | None, Field(gt=0, description="Most this call may cost (USD); required when its price is unknown.")]


def register(mcp: MCPServer[Any]) -> None:
    @mcp.tool(title="Generate image", annotations=PAID)
    @boundary
    async def generate_image(
        prompt: Prompt,
        ctx: Context[Any, Any],
        model: Model = None,
        references: Refs = None,
        aspect_ratio: Ratio = None,
        size: Annotated[str | None, Field(description="Preset (square_hd, landscape_16_9, portrait_4_3 ...), WIDTHxHEIGHT, or 1K/2K/4K on models with a resolution setting.")] = None,
        num_images: Annotated[int, Field(ge=1, le=4, description="How many images (each is billed).")] = 1,
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
        """Make keyframes, character sheets, style frames and location plates from text, optionally guided by reference images.

        With references (character sheet, earlier frame, style frame) a multi-reference edit model is used.
        The result lands in the project (`output`) with a record in image/log/. Long jobs return a job_id:
        collect it with queue_status. Refused before any charge: unknown models, out-of-range values, budget."""
        call = image_call(prompt=prompt, model=model, references=references, aspect_ratio=aspect_ratio, size=size,
                          num_images=num_images, seed=seed, negative_prompt=negative_prompt, output=output,
                          overwrite=overwrite, options=options, fresh=fresh, provider=provider, variations=variations,
                          tier=tier, consistency=consistency, max_cost_usd=max_cost_usd)
        return await _run(ctx, call, wait_s, dry_run, confirm_spend_usd)

    @mcp.tool(title="Edit image", annotations=PAID)
    @boundary
    async def edit_image(
        image: Annotated[str, Field(min_length=1, description="The image to edit: project path, http(s) URL or data: URI.")],
        ctx: Context[Any, Any],
        prompt: Annotated[str | None, Field(description="The change to make (required except for upscale and remove_background).")] = None,
        operation: Annotated[Literal["edit", "inpaint", "upscale", "restyle", "remove_background"], Field(description="edit: instruction edit/composition; inpaint: change only the white area of `mask`; upscale; restyle: strength-guided image-to-image; remove_background.")] = "edit",
        mask: Annotated[str | None, Field(description="For inpaint: a mask image, white where the image should change.")] = None,
        references: Refs = None,
        strength: Annotated[float | None, Field(ge=0, le=1, description="restyle: how strongly to transform the input, 0-1 (on most models 0 keeps it; the model card says).")] = None,
        upscale_factor: Annotated[float | None, Field(gt=0, le=8, description="upscale: the factor, where the model lets you choose.")] = None,
        model: Model = None,
        aspect_ratio: Ratio = None,
        size: Annotated[str | None, Field(description="Output size preset or WIDTHxHEIGHT where the model takes one.")] = None,
        num_images: Annotated[int, Field(ge=1, le=4, description="How many variants (each is billed).")] = 1,
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
        """Edit, inpaint, restyle, remove the background of, or upscale an image.

        Instruction edits need no mask: describe the change. Reference images compose elements into the
        image ("the jacket from image 2"). The result is a new file; the source is never modified."""
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
        image: Annotated[str | None, Field(description="Start frame (image-to-video): project path, http(s) URL or data: URI. Usually a keyframe from image/frames/.")] = None,
        end_image: Annotated[str | None, Field(description="Last frame, on models that take one (first-last-frame).")] = None,
        references: Annotated[list[str] | None, Field(description="Subject/character reference images (reference-to-video models).")] = None,
        video: Annotated[str | None, Field(description="Source video for video-to-video models.")] = None,
        duration: Annotated[float | None, Field(gt=0, le=60, description="Seconds; each model takes its own set (search_models lists them).")] = None,
        aspect_ratio: Ratio = None,
        resolution: Annotated[str | None, Field(description="e.g. 480p, 720p, 1080p, 4k where the model offers a choice.")] = None,
        audio: Annotated[bool | None, Field(description="Native audio (dialogue, effects) on or off, where the model has it; off is often cheaper.")] = None,
        camera_fixed: Annotated[bool | None, Field(description="Lock the camera (tripod) where the model supports it.")] = None,
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
        """Make a clip from text, animate a keyframe (start frame, optional end frame), or follow reference images.

        Video takes 10 s to 5 min: this call waits up to wait_s, then returns a job_id while the job keeps
        running on the server; call queue_status(job_id, wait_s=30) to collect it. The clip is checked
        (it decodes, its length matches) and saved with a record in video/log/."""
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
        return _estimate_only(req, why)
    if (ask := await consent(ctx, state, of_request(req), confirm_spend_usd)) is not None:
        return ask
    started = await state.runner.start(req, started_by=state.caller)
    row = await follow(ctx, started, wait_s)
    reused = not started.created and row.state == "completed" and started.row.state == "completed"
    joined = not started.created and started.row.active
    note = f"Model: {why}; estimate {req.estimate.shown} ({req.estimate.detail})."
    if joined:
        note += " An identical job was already running; this call joined it instead of paying again."
    if call.tool == "generate_video" and row.state == "completed" and row.outputs:
        note += f"\n{review_line(ctx, state.project.root)}"
    return await as_tool_result(state, row, reused=reused, note=note)


def _estimate_only(req: Any, why: str) -> CallToolResult:
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
    return CallToolResult(content=[TextContent(text=text)], structured_content=result.model_dump(mode="json"))
