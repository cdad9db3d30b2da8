"""History: the roles each known revision was made of (docs/behaviour.md#revisions).

The current revision's roles are the spec's; older ones come from the ControllerRevisions the
daemon wrote, whole (templates and role counts). Partition-protected groups and role
instances made from an older template are kept at (and rebuilt from) these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from generator.kinds import Object
from generator.model import ModelServing, Role


@dataclass(frozen=True)
class History:
    current: str
    revisions: Mapping[str, tuple[Role, ...]]  # revision -> its roles
    by_hash: Mapping[tuple[str, str], Role]  # (role name, template hash) -> a role of it

    def roles_of(self, revision: str) -> tuple[Role, ...] | None:
        return self.revisions.get(revision)

    def role_by_hash(self, name: str, role_hash: str, revision: str) -> Role | None:
        """The template a role instance was made from, found by its role-template hash: the
        current spec's, else its own revision's, else any known revision's."""
        for source in (self.current, revision):
            for role in self.revisions.get(source, ()):
                if role.name == name and role.template_hash == role_hash:
                    return role
        return self.by_hash.get((name, role_hash))


def _recorded(cr: Object | None) -> tuple[Role, ...] | None:
    data = (cr or {}).get("data", {}).get("data")
    if not isinstance(data, list):
        return None
    try:
        return tuple(Role.from_raw(r) for r in data)
    except (KeyError, TypeError):
        return None


def history(ms: ModelServing, revisions: Mapping[str, Object]) -> History:
    """The roles of the current spec and of every ControllerRevision in `revisions`."""
    known: dict[str, tuple[Role, ...]] = {ms.revision: ms.template.roles}
    for revision in sorted(revisions):
        if revision in known:
            continue
        # Everything of an older revision comes from its record, role counts included: a
        # partition-protected group is kept exactly as its revision was, not as today's
        # spec scales the roles (docs/behaviour.md#controllerrevisions).
        recorded = _recorded(revisions[revision])
        if recorded is not None:
            known[revision] = recorded
    by_hash: dict[tuple[str, str], Role] = {}
    for roles in known.values():  # the current spec first: it wins a tie
        for role in roles:
            by_hash.setdefault((role.name, role.template_hash), role)
    return History(ms.revision, known, by_hash)
