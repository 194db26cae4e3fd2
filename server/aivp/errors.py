"""The one exception tree of aivp.

Every message is written as the next step for whoever reads it (usually an agent), and never
contains a key. At the MCP boundary `tools/common.py` turns these into `ToolError`, the only
exception type whose message reaches the client.

    AivpError
    ├── ConfigError                 a setting has a value aivp cannot use
    │   └── MissingKeyError         a provider key is not set (fails only the call that needs it)
    ├── InputError                  the call was refused before anything was sent or spent
    │   ├── UnknownModelError       no catalog model or alias by that name (lists the closest)
    │   ├── RetiredModelError       a retired or deprecated model (names the successor for the task)
    │   ├── InvalidParameterError   a value outside the model's enum/range (names the valid ones)
    │   ├── PathOutsideProject      a path escapes the project root (.., absolute, symlink, file://)
    │   └── InputFileError          a local input is missing, not a file, or too large
    ├── BudgetExceeded              the estimate would take spending past AIVP_BUDGET_USD
    ├── ProviderError               the provider could not be reached or refused the request
    │   ├── ProviderHTTPError       an HTTP error answer (status, error_type, request id)
    │   │   └── ProviderAuthError   401/403: the key is wrong or the account is locked
    │   ├── ProviderUnavailable     transport errors or 5xx that outlived the retries
    │   └── SubmitUncertain         the submit may have reached the provider; not repeated
    └── JobError                    about one job in the ledger
        ├── JobNotFound
        ├── JobFailed               the job ran and failed at the provider
        │   └── SafetyRefusal       a content/safety filter refused the prompt or an input
        ├── JobCanceled
        └── OutputLost              the job finished but its output can no longer be fetched
"""

from __future__ import annotations


class AivpError(Exception):
    """Base of every error aivp raises on purpose; `str(e)` is safe to show to a user."""

    code = "error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class ConfigError(AivpError):
    code = "config"


class MissingKeyError(ConfigError):
    code = "missing_key"


class InputError(AivpError):
    code = "invalid_input"


class UnknownModelError(InputError, KeyError):
    code = "unknown_model"

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class RetiredModelError(InputError):
    code = "retired_model"


class InvalidParameterError(InputError):
    code = "invalid_parameter"


class PathOutsideProject(InputError):
    code = "path_outside_project"


class InputFileError(InputError):
    code = "input_file"


class BudgetExceeded(AivpError):
    code = "budget_exceeded"


class ProviderError(AivpError):
    code = "provider_error"


class ProviderHTTPError(ProviderError):
    code = "provider_http_error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        request_id: str | None = None,
        **details: object,
    ) -> None:
        super().__init__(message, **details)
        self.status_code = status_code
        self.error_type = error_type
        self.request_id = request_id


class ProviderAuthError(ProviderHTTPError):
    code = "provider_auth"


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"


class SubmitUncertain(ProviderError):
    code = "submit_uncertain"


class JobError(AivpError):
    code = "job_error"


class JobNotFound(JobError):
    code = "job_not_found"


class JobFailed(JobError):
    code = "job_failed"

    def __init__(self, message: str, *, error_type: str | None = None, **details: object) -> None:
        super().__init__(message, **details)
        self.error_type = error_type


class SafetyRefusal(JobFailed):
    code = "safety_refusal"


class JobCanceled(JobError):
    code = "job_canceled"


class OutputLost(JobError):
    code = "output_lost"
