"""The storyboard-to-clips pipeline: plan (`plan.py`) and run (`run.py`)."""

from .plan import Options, Planner, Step
from .run import PipelineRun, estimate, execute, write_plan_rows

__all__ = ["Options", "PipelineRun", "Planner", "Step", "estimate", "execute", "write_plan_rows"]
