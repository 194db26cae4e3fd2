"""multi_shot_video: the tool over `domain.multishot` (several shots in one Kling O3/V3 call)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import Field

from ..domain.multishot import ElementIn, ShotIn, multishot_call
from .common import JobResult, boundary, state_of
from .consent import ConfirmSpend
from .generate import PAID, DryRun, Fresh, Negative, Options, Output, Overwrite, ProviderArg, Ratio, WaitS, _run


def register(mcp: MCPServer[Any]) -> None:
    @mcp.tool(title="Multi-shot video", annotations=PAID)
    @boundary
    async def multi_shot_video(
        shots: Annotated[list[ShotIn], Field(min_length=1)],
        ctx: Context[Any, Any],
        master_prompt: Annotated[str | None, Field(description="Setting and style common to every shot.")] = None,
        elements: Annotated[list[ElementIn] | None, Field(description="Characters kept consistent, named @Name in prompts.")] = None,
        references: Annotated[list[str] | None, Field(description="Style/location images: @Image1, @Image2... in prompts.")] = None,
        image: Annotated[str | None, Field(description="Start frame of the first shot.")] = None,
        end_image: Annotated[str | None, Field(description="End frame of the last shot.")] = None,
        model: Annotated[str | None, Field(description="kling-o3-pro (default), kling-o3-standard, kling-v3-pro, kling-v3-standard.")] = None,
        aspect_ratio: Ratio = None,
        audio: Annotated[bool | None, Field(description="Native sound; default on when a shot has dialogue.")] = None,
        negative_prompt: Negative = None,
        variations: Annotated[dict[str, str] | None, Field(description="e.g. {\"Mara\": \"night\"}")] = None,
        split: Annotated[bool, Field(description="Also save one clip per shot.")] = False,
        output: Annotated[str | None, Field(description="Default video/clips/group-NN.mp4.")] = None,
        overwrite: Overwrite = False,
        options: Options = None,
        wait_s: WaitS = None,
        fresh: Fresh = False,
        dry_run: DryRun = False,
        provider: ProviderArg = None,
        confirm_spend_usd: ConfirmSpend = None,
    ) -> Annotated[CallToolResult, JobResult] | InputRequiredResult:
        """Several shots (up to 6 on Kling) as one clip with consistent characters, for dialogue scenes and
        sequences. Give each character as an element (front image + up to 3 views, from image/characters/) named
        @Name in the shot prompts. split=true also saves each shot as a clip with its own record."""
        call = multishot_call(state_of(ctx), shots, elements or [], master_prompt=master_prompt, references=references,
                              image=image, end_image=end_image, model=model, aspect_ratio=aspect_ratio, audio=audio,
                              negative_prompt=negative_prompt, split=split, output=output, overwrite=overwrite,
                              options=options, fresh=fresh, provider=provider, variations=variations)
        return await _run(ctx, call, wait_s, dry_run, confirm_spend_usd)
