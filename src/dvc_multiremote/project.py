"""Open a DVC project for one run: find it, pick its remotes, hand them their credentials."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dvc_multiremote.credentials import ephemeral_config_local, host_matches, plan_grants
from dvc_multiremote.errors import UsageError
from dvc_multiremote.remotes import Remote, open_remote
from dvc_multiremote.remotes.spec import (
    RemoteSpec,
    config_error,
    configured_remotes,
    select_remotes,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dvc.repo import Repo

    from dvc_multiremote.inventory import OutputRef
    from dvc_multiremote.scope import Owed
    from dvc_multiremote.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Project:
    """An opened DVC repo and the remotes this run works on, in order."""

    repo: Repo
    specs: list[RemoteSpec]
    remotes: list[Remote]
    warnings: list[str]
    configured: list[str]  # every remote of the config, selected or not

    def owed_outputs(self, outputs: list[OutputRef], *, pull: bool = False) -> Owed:
        """What this run's remotes owe of ``outputs`` (see ``scope.owed_outputs``)."""
        from dvc_multiremote.scope import owed_outputs

        names = [remote.spec.name for remote in self.remotes]
        return owed_outputs(outputs, names, self.configured, pull=pull)


def find_root(path: Path) -> Path:
    """The DVC project root at or above ``path``, or a usage error naming ``--repo``."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    if not path.exists():
        raise UsageError(f"--repo {path} does not exist.")
    try:
        return Path(Repo.find_root(str(path)))
    except NotDvcRepoError:
        raise UsageError(
            f"--repo {path} is not in a DVC project (no .dvc directory at or above it).",
            fix="Run `dvc init` there, or point --repo at the project.",
        ) from None


@contextmanager
def open_project(settings: Settings) -> Iterator[Project]:
    """Open the project with credentials in an ephemeral ``config.local`` for the duration."""
    from dvc.config import Config, ConfigError
    from dvc.repo import Repo

    root = find_root(settings.repo)
    dvc_dir = root / ".dvc"
    try:
        config = Config(dvc_dir=str(dvc_dir))
    except ConfigError as exc:
        raise config_error(root, exc) from None
    specs = select_remotes(config, settings.remotes)
    creds = settings.credentials
    grants, warnings = plan_grants(specs, creds)
    with ephemeral_config_local(dvc_dir, grants):
        try:
            repo = Repo(str(root))
        except ConfigError as exc:
            raise UsageError(f"The DVC config of {root} is invalid: {exc}") from None
        try:
            remotes = [
                open_remote(
                    repo,
                    spec,
                    refused_read_is_cap=host_matches(spec.netloc, creds.b2_hosts),
                    jobs=settings.transfer_jobs,
                    streams=settings.ranged,
                )
                for spec in specs
            ]
        except ConfigError as exc:
            repo.close()
            raise UsageError(f"A remote's DVC config is invalid: {exc}") from None
        try:
            configured = [spec.name for spec in configured_remotes(config)]
            yield Project(repo, specs, remotes, warnings, configured)
        finally:
            repo.close()
