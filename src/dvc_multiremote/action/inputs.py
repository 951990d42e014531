"""The Action's inputs, read from ``INPUT_*`` variables (names keep their hyphens; empty = default).

Every field's default equals its ``default:`` in ``action.yml`` (a test loads both and compares).
Each bad value fails with one sentence that names the input, as it is spelled in a workflow.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple

from pydantic import (
    AliasChoices,
    AliasGenerator,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dvc_multiremote.errors import MultiremoteError, UsageError
from dvc_multiremote.settings import parse_shard, parse_size

if TYPE_CHECKING:
    from collections.abc import Callable

ActionCommand = Literal["pull", "push", "verify", "sync"]
Scope = Literal["auto", "workspace", "pr", "all-commits"]
CommentMode = Literal["auto", "always", "never"]

ACTION_COMMANDS: tuple[str, ...] = ("pull", "push", "verify", "sync")
# Commands that write to the remotes and so need secrets (a fork's pull request has none).
WRITING_COMMANDS: tuple[str, ...] = ("push", "sync")
SCOPES: tuple[str, ...] = ("auto", "workspace", "pr", "all-commits")
COMMENT_MODES: tuple[str, ...] = ("auto", "always", "never")
_LABEL = re.compile(r"^[a-z0-9-]+$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def input_name(field: str) -> str:
    """``fail_on_missing`` -> ``fail-on-missing``, as a workflow's ``with:`` spells it."""
    return field.replace("_", "-")


def _env_names(field: str) -> AliasChoices:
    # The runner keeps hyphens (INPUT_FAIL-ON-MISSING); underscores are accepted for `docker run`.
    return AliasChoices("INPUT_" + input_name(field).upper(), "INPUT_" + field.upper())


def _bad(field: str, text: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_input", f"Input `{input_name(field)}` {text}")


def _lines(value: object, *, commas: bool) -> object:
    if isinstance(value, str):
        parts = re.split(r"[,\n]" if commas else r"\n", value)
        return [part.strip() for part in parts if part.strip()]
    return value


def _one_of(field: str, choices: tuple[str, ...]) -> Callable[[Any], Any]:
    def check(value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if value not in choices:
                raise _bad(field, f"must be one of {', '.join(choices)}, got {value!r}.")
        return value

    return check


def _boolean(field: str) -> Callable[[Any], Any]:
    def check(value: object) -> object:
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise _bad(field, f"must be true or false, got {value!r}.")
        return value

    return check


class ActionInputs(BaseSettings):
    """What a workflow passes in ``with:``; validated before any work starts."""

    model_config = SettingsConfigDict(
        alias_generator=AliasGenerator(validation_alias=_env_names),
        case_sensitive=False,
        env_ignore_empty=True,
        # Field names are not variable names: a stray JOBS or SCOPE must not become an input.
        populate_by_name=False,
        extra="ignore",
    )

    command: ActionCommand
    remotes: Annotated[list[str], NoDecode] = []
    targets: Annotated[list[str], NoDecode] = []
    jobs: int | None = None
    streams: int | None = None
    streams_cutoff: str = ""
    scope: Scope = "auto"
    dry_run: bool = False
    budget: Annotated[list[str], NoDecode] = []
    storage_limit: Annotated[list[str], NoDecode] = []
    prefer_source: Annotated[list[str], NoDecode] = []
    shard: tuple[int, int] | None = None
    comment: CommentMode = "auto"
    comment_label: str = ""
    github_token: SecretStr | None = None
    fail_on_missing: bool = True
    working_directory: Path = Path(".")
    verbose: bool = False

    _command = field_validator("command", mode="before")(_one_of("command", ACTION_COMMANDS))
    _scope = field_validator("scope", mode="before")(_one_of("scope", SCOPES))
    _comment = field_validator("comment", mode="before")(_one_of("comment", COMMENT_MODES))
    _dry_run = field_validator("dry_run", mode="before")(_boolean("dry_run"))
    _fail = field_validator("fail_on_missing", mode="before")(_boolean("fail_on_missing"))
    _verbose = field_validator("verbose", mode="before")(_boolean("verbose"))

    @field_validator("remotes", "prefer_source", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        return _lines(value, commas=True)

    @field_validator("targets", mode="before")
    @classmethod
    def _targets(cls, value: object) -> object:
        return _lines(value, commas=False)

    @field_validator("jobs", "streams", mode="before")
    @classmethod
    def _counts(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            text = value.strip()
            if not text.isdigit() or int(text) < 1:
                raise _bad(
                    str(info.field_name), f"must be a whole number of at least 1, got {value!r}."
                )
            return int(text)
        return value

    @field_validator("streams_cutoff", mode="before")
    @classmethod
    def _cutoff(cls, value: object) -> object:
        if isinstance(value, str) and value.strip():
            try:
                parse_size(value)
            except ValueError:
                raise _bad(
                    "streams_cutoff", f"must be a size like 64MB or 1GiB, got {value!r}."
                ) from None
            return value.strip()
        return value

    @field_validator("budget", "storage_limit", mode="before")
    @classmethod
    def _sizes(cls, value: object, info: ValidationInfo) -> object:
        field = str(info.field_name)
        items = _lines(value, commas=True)
        if isinstance(items, list):
            for item in items:
                name, sep, size = str(item).partition("=")
                if not sep or not name.strip():
                    raise _bad(field, f"must be lines like backblaze=1GB, got {item!r}.")
                try:
                    parse_size(size)
                except ValueError:
                    raise _bad(
                        field,
                        f"has no valid size in {item!r}; write one like 500MB or 1GiB "
                        "(units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB).",
                    ) from None
        return items

    @field_validator("shard", mode="before")
    @classmethod
    def _shard(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return parse_shard(value.strip())
            except UsageError:
                raise _bad(
                    "shard", f"must look like I/N with 1 <= I <= N, such as 2/4, got {value!r}."
                ) from None
        return value

    @field_validator("comment_label", mode="before")
    @classmethod
    def _label(cls, value: object) -> object:
        if isinstance(value, str) and value.strip() and not _LABEL.match(value.strip()):
            raise _bad(
                "comment_label",
                "may hold only lowercase letters, digits and hyphens (it names the comment's "
                f"hidden marker), got {value!r}.",
            )
        return value.strip() if isinstance(value, str) else value

    @property
    def label(self) -> str:
        """The sticky comment's marker label: ``comment-label``, else the command."""
        return self.comment_label or self.command

    @property
    def budget_names(self) -> list[str]:
        return [item.partition("=")[0].strip() for item in self.budget]

    @property
    def storage_limit_names(self) -> list[str]:
        return [item.partition("=")[0].strip() for item in self.storage_limit]


class InputProblem(NamedTuple):
    """One bad input: its name as a workflow spells it, and one sentence about it."""

    input: str
    message: str


class InvalidInputs(Exception):
    """One or more inputs are bad; nothing has been done yet."""

    def __init__(self, problems: list[InputProblem]) -> None:
        super().__init__("; ".join(problem.message for problem in problems))
        self.problems = problems


def read_inputs() -> ActionInputs:
    """Inputs from the environment, or :class:`InvalidInputs` listing every bad one."""
    try:
        return ActionInputs()
    except ValidationError as exc:
        raise InvalidInputs([_problem(error) for error in exc.errors()]) from None


def _problem(error: Any) -> InputProblem:
    loc = str(error["loc"][0]) if error.get("loc") else "input"
    field = loc.removeprefix("INPUT_").removeprefix("input_").lower().replace("-", "_")
    name = input_name(field)
    if error.get("type") == "missing":
        choices = ", ".join(ACTION_COMMANDS) if field == "command" else "a value"
        return InputProblem(name, f"Input `{name}` is required; set it to one of {choices}.")
    if error.get("type") == "invalid_input":
        return InputProblem(name, str(error["msg"]))
    return InputProblem(name, f"Input `{name}` is invalid: {error['msg']}.")


NOT_A_PROJECT = (
    "Input `working-directory` ({path}) is not in a DVC project (no .dvc directory at or above "
    "it); check the repository out first (actions/checkout) or point working-directory at it."
)


SCOPE_NEEDS_PR = (
    "Input `scope` is pr, but this run was triggered by a {event} event, which has no pull "
    "request; use auto, workspace or all-commits."
)


def check_inputs(inputs: ActionInputs, event_name: str, is_pr_event: bool) -> Path:
    """The DVC project's root, once the inputs fit this run (the project and its remotes exist,
    a PR scope has a pull request); else :class:`InvalidInputs` naming every bad input."""
    from dvc_multiremote.project import find_root

    problems: list[InputProblem] = []
    if inputs.dry_run and inputs.command != "sync":
        # Never let a user who asked for a dry run get a real pull or push.
        problems.append(
            InputProblem(
                "dry-run",
                f"Input `dry-run` applies to `sync` only; `{inputs.command}` has no dry run.",
            )
        )
    if inputs.storage_limit and inputs.command != "verify":
        problems.append(
            InputProblem(
                "storage-limit",
                f"Input `storage-limit` applies to `verify` only; `{inputs.command}` does not "
                "list the remotes' storage.",
            )
        )
    if inputs.scope == "pr" and not is_pr_event:
        problems.append(
            InputProblem("scope", SCOPE_NEEDS_PR.format(event=event_name or "non-GitHub"))
        )
    workdir = inputs.working_directory
    if not workdir.is_dir():
        problems.append(
            InputProblem(
                "working-directory",
                f"Input `working-directory` ({workdir}) is not a directory in the workspace.",
            )
        )
        raise InvalidInputs(problems)
    try:
        dvc_root = find_root(workdir)
    except MultiremoteError:
        problems.append(InputProblem("working-directory", NOT_A_PROJECT.format(path=workdir)))
        raise InvalidInputs(problems) from None
    configured = configured_remote_names(dvc_root)
    if configured is not None:
        for name_of_input, names in (
            ("remotes", inputs.remotes),
            ("prefer-source", inputs.prefer_source),
            ("budget", inputs.budget_names),
            ("storage-limit", inputs.storage_limit_names),
        ):
            unknown = [name for name in names if name not in configured]
            if unknown:
                problems.append(
                    InputProblem(
                        name_of_input,
                        f"Input `{name_of_input}` names {unknown[0]!r}, which is not a remote of "
                        f"this DVC project; its remotes are: {', '.join(configured) or 'none'}.",
                    )
                )
    if problems:
        raise InvalidInputs(problems)
    return dvc_root


def configured_remote_names(dvc_root: Path) -> list[str] | None:
    """The project's remote names, or None if its config is invalid (the command says so)."""
    from dvc.config import Config, ConfigError

    from dvc_multiremote.remotes.spec import configured_remotes

    try:
        config = Config(dvc_dir=str(dvc_root / ".dvc"))
    except ConfigError:
        return None  # the command itself reports an invalid config
    return [spec.name for spec in configured_remotes(config)]
