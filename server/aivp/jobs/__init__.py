"""Jobs: the runner that owns every paid generation, from the ledger row to the files in the project.

`runner.py` (start, wait, cancel, adopt, resume) and `drive.py` (one job's states) are the only
writers of job state; `outputs.py` fetches files, `records.py` writes records and plan rows,
`uploads.py` hosts local inputs, `request.py` is what the domain hands over.
"""

from .progress import Progress, describe_state
from .request import JobRequest, record_payload
from .runner import JobRunner, Started

__all__ = ["JobRequest", "JobRunner", "Progress", "Started", "describe_state", "record_payload"]
