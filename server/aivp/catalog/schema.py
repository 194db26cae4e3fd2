"""The shape of `models.json`, the single source of truth for every model aivp knows.

A *model* is what a person names ("seedance-1.5-pro", "nano-banana-pro"). It has one or more
*endpoints*, one per task it does (text-to-video, image-to-video, edit ...), and each endpoint has
one or more *routes*, one per provider that serves it (fal, replicate, byteplus). Parameters are
declared on the model and may be added to or overridden on an endpoint and then on a route; the
effective set for a call is model < endpoint < route.

Each parameter carries an optional *role*: the generic argument of aivp's tools that feeds it
(`duration`, `start_image`, `references` ...). Tools speak roles; the catalog says which native
field each role lands in, so no model-specific field name lives in code.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ..registry import PROVIDER_NAMES

Task = Literal[
    "t2i",  # text to image
    "i2i",  # image to image (style transfer, strength-guided)
    "edit",  # instruction edit / multi-reference composition
    "inpaint",  # masked edit
    "upscale",
    "t2v",  # text to video
    "i2v",  # image to video (start frame)
    "first-last-frame",  # start and end frame
    "reference-to-video",  # subject/character references
    "v2v",  # video to video
    "multi-shot",  # several shots with their own prompts in one clip
]
TASKS: tuple[str, ...] = get_args(Task)

Role = Literal[
    "prompt",
    "negative_prompt",
    "seed",
    "num_images",
    "aspect_ratio",
    "size",  # image_size presets or {width, height}
    "resolution",  # "720p", "1K", "2K" ...
    "duration",  # seconds, however the model spells it
    "audio",  # native audio on/off
    "camera_fixed",
    "image",  # the source image of an edit / i2i / upscale
    "start_image",  # first frame of a video
    "end_image",  # last frame of a video
    "references",  # list of reference images
    "mask",
    "upscale_factor",
    "video",  # source video of a v2v call
    "multi_prompt",  # list of {prompt, duration}
    "elements",  # character elements (Kling)
    "strength",
    "ip_adapters",
    "output_format",
]
ROLES: tuple[str, ...] = get_args(Role)

# The tool argument a caller uses for each role, for messages.
ROLE_ARG = {
    "start_image": "image",
    "image": "image",
    "end_image": "end_image",
    "references": "references",
    "mask": "mask",
    "video": "video",
    "prompt": "prompt",
    "multi_prompt": "shots",
    "elements": "elements",
}

ParamType = Literal[
    "string",
    "integer",
    "number",
    "boolean",
    "image",  # one URL (http(s) or data URI) of an image
    "images",  # a list of image URLs
    "video",  # one URL of a video
    "size",  # a preset name from `presets` or {"width": w, "height": h}
    "object",
    "array",
    # live endpoints (read from a provider's schema): other file inputs, lists of them, and unions
    "file",  # one URL of any file (audio ...)
    "files",
    "videos",
    "any",  # a union the schema allows (a preset name or an object ...): checked by the schema itself
]

Tier = Literal["fast", "standard", "premium"]
Consistency = Literal["none", "weak", "medium", "strong"]
OutputShape = Literal["images", "image", "video"]


def _known_provider(name: str) -> str:
    """A route's provider must be in the registry (providers/__init__.py), which says what each one is."""
    if name not in PROVIDER_NAMES:
        raise ValueError(f"unknown provider {name!r}; aivp knows {', '.join(PROVIDER_NAMES)}")
    return name


Provider = Annotated[str, AfterValidator(_known_provider)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(_Strict):
    """One native input field of a model."""

    type: ParamType
    description: str = ""
    required: bool = False
    default: Any = None
    values: list[str | int | float] | None = None  # enum (string enums stay strings: "5", not 5)
    min: float | None = None
    max: float | None = None
    min_items: int | None = None
    max_items: int | None = None
    role: Role | None = None
    # for type "size": named presets and their pixel size, and whether {width, height} is accepted
    presets: dict[str, tuple[int, int]] | None = None
    custom_size: bool = False


class PriceRule(_Strict):
    """`price` applies when every field in `if` has that value in the effective input."""

    if_: dict[str, Any] = Field(alias="if")
    price: float

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Pricing(_Strict):
    """How a call is billed. `price` is USD per unit (per million tokens for video_token).

    - image: per output image (num_images, and per-output images of a set)
    - megapixel: per output megapixel; `first` is the price of the first megapixel when it differs
    - second: per second of output video
    - video_token: tokens = width * height * fps * seconds / 1024, billed per million
    - call: flat per request
    - unknown: no price aivp can compute (a live endpoint the pricing API does not price); the
      estimate says "unknown" and a paid call needs an explicit max_cost_usd
    """

    unit: Literal["image", "megapixel", "second", "video_token", "call", "unknown"]
    price: float
    first: float | None = None
    fps: int = 24
    when: list[PriceRule] = []
    note: str = ""


class Rule(_Strict):
    """A constraint between fields, checked before submit."""

    exactly_one: list[str] | None = None  # exactly one of these fields must be set
    at_most_one: list[str] | None = None
    requires: dict[str, list[str]] | None = None  # field -> fields that must be set with it
    message: str = ""


class Limits(_Strict):
    """Limits that cannot be read off a single parameter."""

    max_refs: int | None = None  # reference images the model takes (all roles together)
    max_refs_with_video: int | None = None  # Kling: elements + images when a video element is used
    max_shots: int | None = None
    min_shot_s: float | None = None
    max_shot_s: float | None = None
    max_total_s: float | None = None
    max_elements: int | None = None
    max_element_images: int | None = None  # per element, besides the frontal image
    max_video_elements: int | None = None
    max_inputs_plus_outputs: int | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    max_file_mb: float | None = None
    notes: str = ""


class Route(_Strict):
    provider: Provider
    endpoint: str  # fal endpoint id, replicate owner/name[:version], byteplus model id
    params: dict[str, Param] = {}
    pricing: Pricing | None = None
    # names that mean "this model on this provider" (seedream/byteplus/sd -> Seedream via BytePlus)
    aliases: list[str] = []


class Endpoint(_Strict):
    task: Task
    also: list[Task] = []  # other tasks this endpoint does (an i2v endpoint with an end frame ...)
    routes: list[Route]
    output: OutputShape
    params: dict[str, Param] = {}
    pricing: Pricing | None = None
    rules: list[Rule] = []
    limits: Limits | None = None

    @property
    def tasks(self) -> tuple[str, ...]:
        return (self.task, *self.also)


class Retirement(_Strict):
    """A model that must not be called any more: when, why, and what to use instead for each task."""

    on: str  # ISO date
    reason: str
    successors: dict[Task, str] = {}  # task -> a catalog id, alias or endpoint id


class Model(_Strict):
    id: str
    name: str
    vendor: str
    kind: Literal["image", "video"]
    summary: str  # one line: what it is best for
    aliases: list[str] = []
    tier: Tier
    speed: int = Field(ge=1, le=3)  # 3 = fastest
    quality: int = Field(ge=1, le=5)
    consistency: Consistency = "none"
    tags: list[str] = []
    params: dict[str, Param] = {}
    pricing: Pricing
    limits: Limits = Limits()
    rules: list[Rule] = []
    endpoints: list[Endpoint]
    notes: str = ""
    source: str = ""  # where the facts come from (seed file, provider doc)
    status: Literal["active", "retired"] = "active"
    retired: Retirement | None = None
    origin: Literal["curated", "live"] = "curated"  # live: built from a provider's schema at run time

    @property
    def active(self) -> bool:
        return self.status == "active"

    @model_validator(mode="after")
    def _check(self) -> Model:
        if not self.endpoints:
            raise ValueError(f"{self.id}: a model needs at least one endpoint")
        if (self.status == "retired") != (self.retired is not None):
            raise ValueError(f"{self.id}: a retired model needs `retired` (date, reason, successors), and only it")
        return self


class Catalog(_Strict):
    version: int
    models: list[Model]

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        seen: dict[str, str] = {}
        for m in self.models:
            names = [m.id, *m.aliases, *(n for e in m.endpoints for r in e.routes for n in (r.endpoint, *r.aliases))]
            for n in names:
                key = n.lower()
                if key in seen and seen[key] != m.id:
                    raise ValueError(f"name {n!r} is used by both {seen[key]} and {m.id}")
                seen[key] = m.id
        return self
