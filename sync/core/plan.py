"""Plan: the ordered steps that take one ModelServing's live objects to its spec.

Pure and level-based: the same inputs give the same plan, whatever events led there, and
nothing about a rollout or a failure is remembered outside the cluster. The plan holds every
write the daemon will make for this reconcile, the status write and the pruning of old
ControllerRevisions included: the daemon executes it, `msctl plan` prints it, tests assert
on it. Desired objects arrive rendered (`sync.core.desired`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from generator import naming
from generator.kinds import Object
from generator.model import Role
from sync.core import (
    adopt,
    backoff,
    churn,
    diff,
    explain,
    progress,
    recovery,
    recreate,
    rollout,
    scaling,
    settle,
    status,
)
from sync.core.assess import Assessor, GroupView
from sync.core.events import Event, RoleStatus, role_event
from sync.core.inputs import Inputs
from sync.core.observe import GroupState, InstanceState, PodState
from sync.core.steps import InstanceKey, Plan, Recall, Step, Verb, Wave, create_wave

CONFLICT_RETRY = 1.0


@dataclass
class _Planner:
    inp: Inputs
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    requeue: float | None = None
    deleted_groups: set[int] = field(default_factory=set)
    created_groups: dict[int, str] = field(default_factory=dict)  # ordinal -> revision
    deleted_instances: set[InstanceKey] = field(default_factory=set)
    created_instances: set[InstanceKey] = field(default_factory=set)
    waves: list[tuple[rollout.Decision, tuple[int, ...]]] = field(default_factory=list)
    patches: dict[int, diff.PatchAnswer] = field(default_factory=dict)
    failures_kept: list[dict[str, Any]] = field(default_factory=list)  # evidence for the status

    def __post_init__(self) -> None:
        self.ms = self.inp.ms
        self.desired = self.inp.desired
        self.observed = self.inp.observed
        self.content = adopt.judge(
            self.ms,
            self.observed,
            self.desired,
            self.inp.recall.contents if self.inp.recall is not None else None,
        )
        self.assessor = Assessor(
            self.ms, self.inp.history, self.observed, self.inp.status, self.content.same
        )
        self.adopted: list[str] = []  # pods kept, their revision labels not this daemon's
        self.relabelled: list[str] = []  # pods kept through a metadata-only change
        self.foreign = {(o.get("kind"), o["metadata"]["name"]) for o in self.observed.foreign}
        self.earlier = self.inp.recall.patches if self.inp.recall is not None else {}
        self.ledger = backoff.Ledger(
            self.inp.status, self.ms.settings, self.ms.generation or 0, self.inp.now
        )

    # --- helpers

    def add(self, verb: Verb, kind: str, name: str, reason: str, wave: Wave, **kw: Any) -> None:
        self.steps.append(Step(verb, kind, name, reason, wave, **kw))

    def wait(self, seconds: float) -> None:
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def event(self, event: Event) -> None:
        self.add("event", "Event", self.ms.name, event.reason, Wave.EVENT, event=event)

    def blocked(self, kind: str, name: str) -> bool:
        """A name held by an object we do not control (docs/behaviour.md#ownership)."""
        if (kind, name) not in self.foreign:
            return False
        note = f"{kind} {name} exists but is not controlled by this ModelServing; waiting"
        if note not in self.notes:
            self.notes.append(note)
            self.event(Event("ForeignObject", note, "Warning"))
        self.wait(CONFLICT_RETRY)
        return True

    def create(self, obj: Object, reason: str, index: int = 0) -> None:
        name = obj["metadata"]["name"]
        if not self.blocked(obj["kind"], name):
            self.add("create", obj["kind"], name, reason, create_wave(obj["kind"], index), obj=obj)

    def patch(
        self,
        desired: Object,
        live: Object,
        reason: str,
        server_spec: Mapping[str, Any] | None = None,
    ) -> None:
        answer = diff.remembered_patch(self.earlier, desired, live, server_spec=server_spec)
        self.patches[id(desired)] = answer
        ops = answer[4]
        if ops:
            self.add(
                "patch",
                live["kind"],
                live["metadata"]["name"],
                reason,
                Wave.PATCH,
                obj=live,
                ops=ops,
            )

    def delete(self, live: Object, reason: str) -> None:
        self.add("delete", live["kind"], live["metadata"]["name"], reason, Wave.DELETE, obj=live)

    # --- units

    def create_instance(
        self, group: int, role: Role, ordinal: int, revision: str, why: str
    ) -> None:
        for index in range(role.size):
            pod = self.desired.pod(role, group, ordinal, index, revision)
            self.create(pod, why, index)
        service = self.desired.service(role, group, ordinal)
        if service is not None:
            self.create(service, why)
        self.created_instances.add((group, role.name, ordinal))
        self.role_event("Creating", role.name, ordinal, group)

    def delete_instance(self, group: int, instance: InstanceState, why: str) -> None:
        key = (group, instance.role, instance.ordinal)
        if key in self.deleted_instances or group in self.deleted_groups:
            return
        self.deleted_instances.add(key)
        for pod in sorted(instance.pods.values(), key=lambda p: p.index):
            if not pod.terminating:
                self.delete(pod.obj, why)
        if instance.service is not None and "deletionTimestamp" not in instance.service["metadata"]:
            self.delete(instance.service, why)
        self.role_event("Deleting", instance.role, instance.ordinal, group)

    def create_group(self, ordinal: int, why: str) -> None:
        roles, revision = self.assessor.roles_for_new(ordinal)
        self.created_groups[ordinal] = revision
        podgroup = self.desired.podgroups[ordinal]
        if podgroup is not None:
            self.create(podgroup, why)
        for role in roles:
            for instance in range(role.replicas):
                self.create_instance(ordinal, role, instance, revision, why)

    def delete_group(self, group: GroupState, why: str) -> None:
        if group.ordinal in self.deleted_groups:
            return
        self.deleted_groups.add(group.ordinal)
        for instance in group.instances.values():
            for pod in instance.pods.values():
                if not pod.terminating:
                    self.delete(pod.obj, why)
            if (
                instance.service is not None
                and "deletionTimestamp" not in instance.service["metadata"]
            ):
                self.delete(instance.service, why)
        if group.podgroup is not None and "deletionTimestamp" not in group.podgroup["metadata"]:
            self.delete(group.podgroup, why)

    # --- the passes

    def revision(self) -> None:
        # A ControllerRevision's data is immutable and its name is the hash of the templates,
        # so one that exists is right; replica counts in it are informational only.
        if self.ms.revision not in self.observed.revisions:
            self.create(self.desired.revision, f"record the roles of revision {self.ms.revision}")

    def scale_groups(self, views: dict[int, GroupView]) -> None:
        groups = self.observed.groups
        for ordinal in scaling.missing_ordinals(groups, self.ms.replicas):
            self.create_group(ordinal, f"scale up to {self.ms.replicas} ServingGroups")
        if len(groups) <= self.ms.replicas:
            return
        candidates = [
            scaling.Candidate(o, views[o].running, groups[o].deletion_cost, views[o].protected)
            for o in groups
        ]
        for ordinal in scaling.to_remove(candidates, self.ms.replicas):
            if not groups[ordinal].terminating:
                self.delete_group(
                    groups[ordinal], f"scale down to {self.ms.replicas} ServingGroups"
                )

    def maintain_group(self, group: GroupState, view: GroupView) -> None:
        want = self.desired.podgroups[group.ordinal]
        if want is None:
            if group.podgroup is not None:
                self.delete(group.podgroup, "PodGroups are not managed for this scheduler")
        elif group.podgroup is None:
            self.create(want, "PodGroup missing")
        else:
            self.patch(
                want,
                group.podgroup,
                "PodGroup differs from the spec",
                self.desired.podgroup_specs[group.ordinal],
            )
        names = {r.name for r in view.roles}
        for role in view.roles:
            self.scale_role(group, role, view)
        for instance in list(group.instances.values()):
            if instance.terminating or group.ordinal in self.deleted_groups:
                continue
            key = (group.ordinal, instance.role, instance.ordinal)
            if key in self.deleted_instances:
                continue
            if instance.role not in names and self.ms.rollout.role_rolling:
                self.delete_instance(group.ordinal, instance, f"role {instance.role} was removed")
                continue
            self.maintain_instance(group, instance)

    def vanished(self, group: GroupState, role: Role, missing: list[int]) -> bool:
        """Whether missing instances of an existing group vanished (rather than being wanted
        by a role scale-up not made yet). Every instance of the spec was created before the
        status of its generation could be written (a wave with a failure stops the plan), so
        once `observedGeneration` is this generation, a missing instance is a loss, whether
        it went while the daemon ran or while it was down (docs/behaviour.md#recovery)."""
        reconciled = self.inp.status.get("observedGeneration")
        if self.ms.generation is None or reconciled != self.ms.generation:
            return False
        names = [naming.pod_name(self.ms.name, group.ordinal, role.name, o, 0) for o in missing]
        return not any(self.blocked("Pod", n) for n in names)

    def scale_role(self, group: GroupState, role: Role, view: GroupView) -> None:
        if group.ordinal in self.deleted_groups:
            return
        instances = group.instances_of(role.name)
        missing = scaling.missing_ordinals(instances, role.replicas)
        if (
            missing
            and self.ms.recovery_policy == "ServingGroupRecreate"
            and self.vanished(group, role, missing)
        ):
            lost = naming.role_id(role.name, missing[0])
            self.delete_group(
                group,
                f"role instance {lost} is missing: recreate ServingGroup (ServingGroupRecreate)",
            )
            return
        for ordinal in missing:
            template, revision = self.assessor.template_for_missing(role, ordinal, view.revision)
            self.create_instance(
                group.ordinal,
                template,
                ordinal,
                revision,
                f"scale role {role.name} up to {role.replicas}",
            )
        alive = {o: i for o, i in instances.items() if not i.terminating}
        if len(alive) <= role.replicas:
            return
        protect = rollout.role_partition(role) if self.ms.rollout.role_rolling else 0
        candidates = [
            scaling.Candidate(o, self.assessor.instance_ready(i), i.deletion_cost, o < protect)
            for o, i in alive.items()
        ]
        for ordinal in scaling.to_remove(candidates, role.replicas):
            self.delete_instance(
                group.ordinal, alive[ordinal], f"scale role {role.name} down to {role.replicas}"
            )

    def maintain_instance(self, group: GroupState, instance: InstanceState) -> None:
        # An instance running what the current revision renders is kept as it is and its
        # labels brought to ours, whoever wrote it (docs/behaviour.md#adoption).
        adopted = self.assessor.adopt(group, instance)
        template = (
            self.assessor.current[instance.role]
            if adopted
            else self.assessor.labelled_template(instance)
        )
        if template is None:
            self.notes.append(
                f"{instance.role_id} in group {group.ordinal}: template {instance.role_hash}"
                " unknown (no ControllerRevision) and its pods differ from the spec"
                f" ({self.differs(instance)}); left to the rolling update"
            )
            return
        if self.failures(group, instance):
            return
        revision = self.ms.revision if adopted else instance.revision
        missing = [k for k in range(template.size) if k not in instance.pods]
        if missing and self.recover_missing(group, instance, template, missing, revision):
            return
        service = self.desired.service(template, group.ordinal, instance.ordinal)
        if service is not None:
            if instance.service is None:
                self.create(service, "headless Service missing")
            else:
                self.patch(service, instance.service, "Service differs from the spec")
        for pod in instance.pods.values():
            if pod.terminating:
                continue
            why = "pod labels or annotations differ from the spec"
            if adopted and pod.revision != self.ms.revision:
                if self.ours(pod):
                    why = (
                        f"only pod metadata changed since revision {pod.revision}:"
                        " patched in place, no restart"
                    )
                    self.relabelled.append(pod.name)
                else:
                    why = (
                        f"adopt in place: runs what revision {self.ms.revision} renders;"
                        f" labels of revision {pod.revision or '(none)'} replaced"
                    )
                    self.adopted.append(pod.name)
            want = self.desired.pod(
                template,
                group.ordinal,
                instance.ordinal,
                pod.index,
                self.ms.revision if adopted else pod.revision or instance.revision,
            )
            self.patch(want, pod.obj, why)

    def ours(self, pod: PodState) -> bool:
        """The pod's labels name a template this daemon knows: its role-template hash is
        ours for its revision (the reference's hashes never are, docs/behaviour.md#adoption)."""
        return self.inp.history.role_by_hash(pod.role, pod.role_hash, pod.revision) is not None

    def differs(self, instance: InstanceState) -> str:
        """What the first differing pod of an instance runs that the spec does not."""
        for pod in sorted(instance.pods.values(), key=lambda p: p.index):
            if pod.uid in self.content.why:
                return f"{pod.name}: {self.content.why[pod.uid]}"
        return f"role {instance.role} is not in the spec"

    def failures(self, group: GroupState, instance: InstanceState) -> bool:
        """Act on failing pods; True when the instance (or group) is being replaced."""
        grace = self.ms.template.restart_grace_period_seconds
        for pod in sorted(instance.pods.values(), key=lambda p: p.index):
            verdict = recovery.judge(pod, self.inp.now, grace)
            if verdict.annotations:
                ops = diff.annotation_patch(pod.obj, verdict.annotations)
                if ops:
                    self.add(
                        "patch",
                        "Pod",
                        pod.name,
                        verdict.why,
                        Wave.PATCH,
                        obj=pod.obj,
                        ops=tuple(ops),
                    )
            if verdict.wait:
                self.wait(verdict.wait)
            if verdict.action == "replace":
                return self.recover(group, instance, verdict.why, failed=pod)
        return False

    def recover(
        self, group: GroupState, instance: InstanceState, why: str, failed: PodState | None = None
    ) -> bool:
        policy = self.ms.recovery_policy
        if failed is not None and not self.may_recreate(failed, why):
            return True
        if policy == "ServingGroupRecreate":
            self.delete_group(group, f"{why}: recreate ServingGroup (ServingGroupRecreate)")
        elif policy == "RoleRecreate":
            self.delete_instance(
                group.ordinal, instance, f"{why}: recreate role instance (RoleRecreate)"
            )
        elif failed is not None:
            self.delete(failed.obj, f"{why}: replace the pod alone (recoveryPolicy None)")
        else:
            return False
        return True

    def may_recreate(self, pod: PodState, why: str) -> bool:
        """Backoff and the restart budget (docs/behaviour.md#backoff); evidence kept."""
        verdict = recreate.gate(self.ledger, self.ms, pod, why, self.inp.now)
        for event in verdict.events:
            self.event(event)
        self.failures_kept.extend(verdict.failures)
        if verdict.note and verdict.note not in self.notes:
            self.notes.append(verdict.note)
        if verdict.wait is not None:
            self.wait(max(verdict.wait, 0.1))
        return verdict.proceed

    def recover_missing(
        self,
        group: GroupState,
        instance: InstanceState,
        template: Role,
        missing: list[int],
        revision: str,
    ) -> bool:
        names = [
            naming.pod_name(self.ms.name, group.ordinal, instance.role, instance.ordinal, k)
            for k in missing
        ]
        if any(self.blocked("Pod", n) for n in names):
            return True
        if self.ms.recovery_policy != "None":
            return self.recover(group, instance, f"pod {names[0]} is missing")
        for index in missing:
            pod = self.desired.pod(template, group.ordinal, instance.ordinal, index, revision)
            self.create(pod, "pod missing: replaced alone (recoveryPolicy None)", index)
        return False

    def roll(self, views: dict[int, GroupView]) -> None:
        if self.ms.rollout.role_rolling:
            self.roll_roles()
            return
        units = [
            rollout.Unit(
                o,
                v.updated,
                v.running and o not in self.deleted_groups,
                v.deleting or o in self.deleted_groups,
            )
            for o, v in views.items()
        ] + [
            rollout.Unit(o, rev == self.ms.revision, False)
            for o, rev in self.created_groups.items()
        ]
        strategy = self.ms.rollout
        decision = rollout.group_rollout(
            units, self.ms.replicas, strategy.max_unavailable, strategy.partition
        )
        for ordinal in decision.delete:
            self.delete_group(
                self.observed.groups[ordinal],
                f"rolling update to revision {self.ms.revision} ({decision.why})",
            )
        self.waves = rollout.waves(
            units, self.ms.replicas, strategy.max_unavailable, strategy.partition
        )
        if any(not u.updated for u in units) and not decision.delete:
            self.notes.append(f"rollout: {decision.why}")

    def roll_roles(self) -> None:
        for ordinal in sorted(self.observed.groups, reverse=True):
            group = self.observed.groups[ordinal]
            if group.terminating or ordinal in self.deleted_groups:
                continue
            for role in self.ms.template.roles:
                units = []
                for o, instance in group.instances_of(role.name).items():
                    key = (ordinal, role.name, o)
                    units.append(
                        rollout.Unit(
                            o,
                            self.assessor.instance_current(instance)
                            or key in self.created_instances,
                            self.assessor.instance_ready(instance),
                            instance.terminating or key in self.deleted_instances,
                        )
                    )
                budget = rollout.RoleBudget(role.replicas, role.max_unavailable, role.partition)
                decision = rollout.role_rollout(units, budget)
                for o in decision.delete:
                    self.delete_instance(
                        ordinal,
                        group.instances_of(role.name)[o],
                        f"rolling update of role {role.name} to {role.template_hash}"
                        f" ({decision.why})",
                    )

    def takeover_notes(self) -> None:
        """Say what a takeover (or an upgrade of msctl) does to pods it did not write."""
        rolled = [
            p.name
            for g in self.observed.groups.values()
            for p in g.pods()
            if not self.ours(p) and not p.terminating and p.name not in self.adopted
        ]
        if self.adopted or rolled:
            self.notes.append(
                f"takeover: adopt {len(self.adopted)} pods in place, roll {len(rolled)}"
                " (pods whose revision this daemon did not write, judged by what they run)"
            )
        if self.relabelled:
            self.notes.append(
                f"metadata-only change: {len(self.relabelled)} pods patched in place,"
                " none restarted"
            )

    def running_events(self) -> frozenset[InstanceKey]:
        running = frozenset(
            (g.ordinal, i.role, i.ordinal)
            for g in self.observed.groups.values()
            for i in g.instances.values()
            if self.assessor.instance_ready(i)
        )
        if self.inp.recall is not None:
            for group, role, ordinal in sorted(running - self.inp.recall.running):
                self.role_event("Running", role, ordinal, group)
        return running

    def deadline_wait(self) -> None:
        """Come back when the progress deadline would pass (docs/behaviour.md#progress)."""
        written = [s.obj for s in self.steps if s.verb == "status" and s.obj is not None]
        current = written[0].get("status", {}) if written else self.inp.status
        left = progress.deadline_left(self.ms, current, self.inp.now)
        if left is not None:
            self.wait(left)

    def role_event(self, what: RoleStatus, role: str, ordinal: int, group: int) -> None:
        group_name = naming.group_name(self.ms.name, group)
        self.event(role_event(what, role, naming.role_id(role, ordinal), group_name))

    def paced_by_backoff(self, step: Step) -> bool:
        """A write to a group or role instance the recovery backoff tracks: that backoff paces
        its recreations, so they are no loop for the churn net (docs/behaviour.md#churn)."""
        units = self.ledger.units
        if not units:
            return False
        parsed = naming.parse_pod_name(self.ms.name, step.name)
        if parsed is not None:
            group, role, instance, _ = parsed
            return (group, "") in units or (group, naming.role_id(role, instance)) in units
        group_ordinal = naming.parse_group_name(self.ms.name, step.name)
        return group_ordinal is not None and any(k[0] == group_ordinal for k in units)

    def run(self) -> Plan:
        self.revision()
        assessed = self.assessor.views()
        views = {v.ordinal: v for v in assessed}
        self.scale_groups(views)
        for ordinal in sorted(self.observed.groups):
            group = self.observed.groups[ordinal]
            if not group.terminating and ordinal not in self.deleted_groups:
                self.maintain_group(group, views[ordinal])
        self.roll(views)
        for obj in self.observed.stray:
            if "deletionTimestamp" not in obj["metadata"]:
                self.delete(
                    obj, "controlled by this ModelServing but stands for none of its objects"
                )
        self.takeover_notes()
        self.notes += explain.held_notes(self.ms, self.observed, views)
        running = self.running_events()
        forget = self.ledger.observe(
            *recreate.readiness(
                self.ms, self.observed, self.assessor, views, list(self.ledger.units)
            )
        )
        if forget is not None:
            self.wait(forget)
        before = self.inp.recall.churn if self.inp.recall is not None else churn.Churn()
        paced = [s for s in self.steps if not self.paced_by_backoff(s)]
        after = churn.record(before, paced, self.inp.now)
        problem = None
        if after.looping:
            problem = status.Problem("RepeatedWrites", after.cause)
            if after.strikes > before.strikes:
                self.event(Event("RepeatedWrites", after.cause, "Warning"))
                self.notes.append(f"{after.cause}; backing off {after.delay():.0f}s")
        self.steps += settle.status_steps(
            self.inp,
            self.assessor,
            assessed,
            self.steps,
            self.ledger,
            self.failures_kept,
            problem,
        )
        self.deadline_wait()
        return Plan(
            steps=tuple(sorted(self.steps, key=lambda s: s.wave)),
            requeue_after=self.requeue,
            notes=tuple(self.notes),
            waves=tuple((d.why, wave) for d, wave in self.waves),
            recall=Recall(running, self.patches, self.content.answers, after),
        )


def plan(inputs: Inputs) -> Plan:
    return _Planner(inputs).run()
