"""The scheduler state machine the Faust agent drives.

Inputs are anomalies, analyst actions and clock ticks; outputs are case events (dicts for
`cases.events`). All state is plain data (`to_dict`), so a changelog-backed table can hold it and a
restarted worker resumes exactly where it stopped. Every input is idempotent by its id because
delivery is at-least-once.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from .assignment import FreeAnalyst, WaitingCase
from .cases import CLOSED, HELD, Case, Evidence, Status, case_id_for, utc
from .config import SEVERITIES, SchedulerPolicy
from .escalation import Breach, overdue, stranded
from .events import CaseEvent
from .policies import assigner
from .roster import Analyst, Roster

STATE_VERSION = 1
REOPEN = "reopen"  # the one action an operator may take too (reviewing the machine's decisions)
ACTIONS = ("ack", "resolve", "reassign", "label", REOPEN)  # every analyst action, here only
# The outcomes of a case the monitor resolved while it waited (`Scheduler._close_waiting`), on the case
# and its `auto_resolved` event. The two tell apart a case no analyst saw from one an analyst had
# acknowledged and that went back to the queue (handed back, holder off shift or off the roster, capacity
# lowered) before anyone resolved it.
UNATTENDED = "unattended"  # no analyst acknowledged it (since it was created or last reopened)
UNFINISHED = "unfinished"  # an analyst acknowledged it, then it waited for its next holder


def reopened(why: str) -> str:
    """The reason a machine-closed case carries once it is back in the queue, whoever reopened it."""
    return f"reopened: {why}"


class ActionError(Exception):
    """An analyst action that cannot be applied; `.status` is the HTTP status the API should answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Scheduler:
    def __init__(self, roster: Roster, policy: SchedulerPolicy, state: dict[str, Any] | None = None) -> None:
        self._roster = roster
        self._policy = policy
        self._assign = assigner(policy)
        state = state or {"version": STATE_VERSION}
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"scheduler state version {state.get('version')!r}; this code reads {STATE_VERSION}")
        self._cases: dict[str, Case] = {cid: Case.from_dict(d) for cid, d in state.get("cases", {}).items()}
        self._actions: dict[str, str] = dict(state.get("actions", {}))  # action_id -> case_id
        self._seq: int = state.get("seq", 0)
        self._assignments: int = state.get("assignments", 0)
        self._last_assigned: dict[str, int] = dict(state.get("last_assigned", {}))
        # Derived index of cases not yet closed, so ticks do not rescan history. Not stored.
        self._open: dict[str, Case] = {cid: c for cid, c in self._cases.items() if c.status not in CLOSED}

    @classmethod
    def from_dict(cls, roster: Roster, policy: SchedulerPolicy, state: dict[str, Any]) -> Scheduler:
        return cls(roster, policy, state)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "seq": self._seq,
            "assignments": self._assignments,
            "last_assigned": dict(self._last_assigned),
            "cases": {cid: case.to_dict() for cid, case in self._cases.items()},
            "actions": dict(self._actions),
        }

    @property
    def roster(self) -> Roster:
        return self._roster

    # ---- queries -------------------------------------------------------------------------------

    def case(self, case_id: str) -> dict[str, Any] | None:
        case = self._cases.get(case_id)
        return case.to_dict() if case else None

    def cases_for(self, analyst_id: str) -> list[dict[str, Any]]:
        """The analyst's open cases, most urgent first."""
        held = [c for c in self._open.values() if c.analyst == analyst_id and c.status in HELD]
        return [c.to_dict() for c in sorted(held, key=lambda c: (-c.priority, c.seq))]

    def machine_closed(self, limit: int = 50) -> list[dict[str, Any]]:
        """The cases the machine closed and still held, at most `limit`, for review: those closed
        `unattended` first (no analyst saw them), then the machine's other closes (routine, and
        `unfinished` ones an analyst saw); each group most recently closed first (then the latest to
        arrive). Newest first alone let fifty routine info closes push a critical case nobody could
        take off the list within minutes."""
        closed = [c for c in self._cases.values() if c.status is Status.AUTO_RESOLVED]
        return [c.to_dict() for c in sorted(closed, key=_review_order)[:limit]]

    def waiting(self, now: datetime) -> list[dict[str, Any]]:
        """The queue, most urgent first (priority, then arrival), each case with `unserved`: why nobody
        holds it at `now` (no skill, nobody on shift, no capacity). Urgency, not the order of service: the
        optimiser serves a case that can still make its acknowledge SLA before a higher-priority one that
        already missed it, and weighs waiting, skills and load too (scheduler/optimizer.py)."""
        queue = [c for c in self._open.values() if c.status is Status.WAITING]
        return [{**c.to_dict(), "unserved": self._unserved(c, utc(now))}
                for c in sorted(queue, key=lambda c: (-c.priority, c.seq))]

    def reassign_targets(self, case_id: str, holder: str, now: datetime) -> list[dict[str, str | None]]:
        """Everyone on the roster but `holder`, by id, each `{id, name, problem}`: problem None for those the
        holder may hand `case_id` to at `now`, else why not (the reassign action's own refusal, e.g.
        "is not on shift"). Empty unless `holder` holds the case (assigned or acknowledged): nobody
        else may reassign it."""
        case = self._cases.get(case_id)
        if case is None or case.analyst != holder or case.status not in HELD:
            return []
        loads, when = self._loads(), utc(now)
        return [{"id": a.id, "name": a.name, "problem": self._cannot_take(case, holder, a, when, loads)}
                for a in sorted(self._roster.analysts.values(), key=lambda a: a.id) if a.id != holder]

    # ---- inputs --------------------------------------------------------------------------------

    def on_anomaly(self, anomaly: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
        """Raises `AnomalyError` (a ValueError) for a record that should be dead-lettered."""
        now = utc(now)
        evidence = Evidence.from_anomaly(anomaly)
        case = self._cases.get(case_id_for(evidence.anomaly_id))
        out: list[CaseEvent] = []
        entered: list[Case] = []
        if case is None:
            if evidence.event != "resolve":  # an 'update' whose 'open' we never saw still deserves a case
                self._create(evidence, now, out, entered)
        elif evidence.event == "update":
            self._update(case, evidence, now, out, entered)
        elif evidence.event == "resolve" and case.status is Status.WAITING:
            self._close_waiting(case, now, out)
        return self._finish(out, entered, now)

    def on_action(self, action: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
        now = utc(now)
        fields = {name: action.get(name) for name in ("action", "case_id", "analyst", "action_id")}
        for name, value in fields.items():
            if not isinstance(value, str) or not value:
                raise ActionError(400, f"action field {name!r} must be a non-empty string, got {value!r}")
        kind, analyst = fields["action"], fields["analyst"]
        if kind not in ACTIONS:
            raise ActionError(400, f"action must be one of {ACTIONS}, got {kind!r}")
        if fields["action_id"] in self._actions:
            return []
        case = self._cases.get(fields["case_id"])
        if case is None:
            raise ActionError(404, f"no case {fields['case_id']!r}")
        out: list[CaseEvent] = []
        entered: list[Case] = []
        if kind == "label":
            self._label(case, analyst, action.get("labels"), now, out)
        elif kind == REOPEN:
            self._overrule(case, analyst, now, out, entered)
        else:
            self._check_holder(case, analyst, kind)
            if kind == "ack":
                self._acknowledge(case, analyst, now, out)
            elif kind == "resolve":
                self._resolve(case, analyst, action, now, out)
            else:
                self._reassign(case, analyst, action.get("to"), now, out, entered)
        self._actions[fields["action_id"]] = case.case_id
        return self._finish(out, entered, now)

    def tick(self, now: datetime) -> list[dict[str, Any]]:
        """Hold the cases to the roster in force, escalate SLA breaches, return cases stranded with an
        off-shift holder, then assign whatever capacity allows (shifts start, cases free up)."""
        now = utc(now)
        out: list[CaseEvent] = []
        entered: list[Case] = []
        self._reconcile(now, out)
        for case, breach in overdue(self._open.values(), now):
            case.escalations += 1
            case.priority = self._policy.priority(case.severity, case.scope, case.escalations)
            holder = case.analyst
            if breach is Breach.RESOLVE:
                case.resolve_escalated = True
                reason = f"not resolved within the {self._policy.resolve_sla[case.severity]} SLA"
            else:
                sla = self._policy.ack_sla[case.severity]
                if holder is None:
                    case.ack_due = now + sla
                    reason = f"waited past the {sla} acknowledge SLA: {self._unserved(case, now)}"
                else:
                    reason = f"not acknowledged by {holder} within {sla}"
                    _avoid(case, holder)
                    self._to_waiting(case, reason, now, entered)
            out.append(CaseEvent.of("escalated", case, now, analyst=holder, reason=reason, notify=self._notify(holder)))
        for case in [c for c in self._open.values() if stranded(c, self._roster, now)]:
            holder = case.analyst or ""
            _avoid(case, holder)
            sla = self._policy.resolve_sla[case.severity]
            self._unassign(case, f"{holder} is off shift and the case is past its {sla} resolve SLA", now, out)
        self._prune(now)
        return self._finish(out, entered, now)

    def _prune(self, now: datetime) -> None:
        """Forget cases closed longer than `retain_closed` ago, and beyond the `retain_closed_count` most
        recently closed of their kind (`_retention_group`: resolved by an analyst, closed `unattended`,
        the machine's other closes: routine or `unfinished`), and the action ids that named them. The
        count bounds each kind on its own, so no burst of one kind pushes a recent case of another out:
        the machine's closes do not delete a case an analyst just resolved (whose resolve would then be
        replayed as a 404, and whose anomaly's next `update` would open a new case), nor its other
        closes an unattended one nobody has reviewed yet. The state holds at most three times
        `retain_closed_count` of them."""
        horizon = now - self._policy.retain_closed
        groups: dict[str, list[Case]] = {}
        for c in self._cases.values():
            if c.status in CLOSED and c.closed_at is not None:
                groups.setdefault(_retention_group(c), []).append(c)
        stale = [
            c.case_id
            for group in groups.values()
            for n, c in enumerate(sorted(group, key=_review_order))
            if n >= self._policy.retain_closed_count or c.closed_at < horizon
        ]
        for cid in stale:
            del self._cases[cid]
        if stale:
            self._actions = {a: cid for a, cid in self._actions.items() if cid in self._cases}

    def set_roster(self, roster: Roster, now: datetime | None = None) -> list[dict[str, Any]]:
        """Swap the roster; cases of removed analysts, or beyond a lowered capacity, go back to waiting."""
        now = utc(now or datetime.now(UTC))
        self._roster = roster
        out: list[CaseEvent] = []
        self._reconcile(now, out)
        return self._finish(out, [], now)

    def _reconcile(self, now: datetime, out: list[CaseEvent]) -> None:
        """Send back the cases of analysts not on the roster in force, and those beyond a lowered capacity.

        `set_roster` does it for an edit the watcher sees; `tick` does it too because the stored state
        may predate the roster: an edit made while the worker was down is the roster at start-up, which
        the watcher never reports as a change. Idempotent: a state that fits the roster is left alone."""
        held: dict[str, list[Case]] = {}
        for case in self._open.values():
            if case.status in HELD:
                held.setdefault(case.analyst or "", []).append(case)
        for analyst_id, cases in held.items():
            analyst = self._roster.analysts.get(analyst_id)
            if analyst is None:
                for case in cases:
                    self._unassign(case, f"{analyst_id} left the roster", now, out)
                continue
            # Over a lowered capacity: give back unacknowledged work first, latest arrivals first.
            cases.sort(key=lambda c: (c.status is Status.ACKNOWLEDGED, -c.seq))
            for case in cases[: max(0, len(cases) - analyst.capacity)]:
                self._unassign(case, f"{analyst_id}'s capacity was lowered to {analyst.capacity}", now, out)

    # ---- transitions ---------------------------------------------------------------------------

    def _create(self, evidence: Evidence, now: datetime, out: list[CaseEvent], entered: list[Case]) -> None:
        self._seq += 1
        stories = evidence.stories()
        case = Case(
            case_id=case_id_for(evidence.anomaly_id),
            anomaly_id=evidence.anomaly_id,
            seq=self._seq,
            kind=evidence.kind,
            scope=evidence.scope,
            severity=evidence.severity,
            score=evidence.score,
            sample_ids=list(stories),
            headlines=list(stories.values()),
            social_ids=[sid for sid in stories if sid in evidence.social_ids],
            status=Status.WAITING,
            priority=self._policy.priority(evidence.severity, evidence.scope, 0),
            created_at=now,
            ack_due=now + self._policy.ack_sla[evidence.severity],
            resolve_due=now + self._policy.resolve_sla[evidence.severity],
        )
        self._cases[case.case_id] = self._open[case.case_id] = case
        out.append(CaseEvent.of("created", case, now))
        reason = self._policy.machine_reason(case.severity, case.kind)
        if reason is not None:
            self._close(case, Status.AUTO_RESOLVED, now)
            case.reason = reason
            out.append(CaseEvent.of("auto_resolved", case, now, reason=reason))
        else:
            entered.append(case)

    def _update(self, case: Case, evidence: Evidence, now: datetime, out: list[CaseEvent], entered: list[Case]) -> None:
        """New evidence or severity. A human-resolved case stays resolved; a machine-resolved one
        reopens if the new severity is no longer the machine's to handle."""
        if case.status is Status.RESOLVED:
            return
        known = set(case.sample_ids)
        fresh = {sid: text for sid, text in evidence.stories().items() if sid not in known}
        # A story the case holds may first have come without its style (from a monitor before styles).
        case.social_ids += [sid for sid in case.sample_ids if sid in evidence.social_ids and sid not in case.social_ids]
        old = case.severity
        if not fresh and evidence.severity == old and evidence.score == case.score:
            return
        case.sample_ids += fresh
        case.headlines += fresh.values()
        case.social_ids += [sid for sid in fresh if sid in evidence.social_ids]
        case.severity, case.score = evidence.severity, evidence.score
        case.priority = self._policy.priority(case.severity, case.scope, case.escalations)
        case.resolve_due = case.resolve_start + self._policy.resolve_sla[case.severity]
        if case.status in (Status.WAITING, Status.ASSIGNED):  # a tighter SLA takes effect at once
            case.ack_due = min(case.ack_due, now + self._policy.ack_sla[case.severity])
        reason = f"severity {old} -> {case.severity}" if old != case.severity else "new evidence"
        # A holder must hear that their case became more urgent: its SLAs just tightened.
        raised = case.status in HELD and SEVERITIES.index(case.severity) > SEVERITIES.index(old)
        notify = self._notify(case.analyst) if raised else None
        out.append(CaseEvent.of("updated", case, now, analyst=case.analyst, reason=reason, notify=notify))
        if case.status is Status.AUTO_RESOLVED and self._policy.machine_reason(case.severity, case.kind) is None:
            # Said as `reopened` (no analyst: the evidence reopened it), as an analyst's overrule is: without
            # it, receivers and the demo saw a machine-closed case assigned with nothing between.
            why = reopened(f"severity {case.severity} needs an analyst")
            out.append(CaseEvent.of("reopened", case, now, reason=why))
            self._reopen(case, why, now, entered)

    def _overrule(self, case: Case, analyst: str, now: datetime, out: list[CaseEvent], entered: list[Case]) -> None:
        """Any analyst or operator on the roster may disagree with the machine: its closed case goes back
        to the queue and is assigned by the usual rules (capacity, skills, shifts), not necessarily to them."""
        if case.status is not Status.AUTO_RESOLVED:
            raise ActionError(409, f"cannot reopen {case.case_id}: it is {case.status.value}, not closed by the machine")
        if not self._reviewer(analyst):
            raise ActionError(403, f"{analyst} is not on the roster")
        why = reopened(f"by {analyst}, overruling the machine ({case.reason or 'no reason recorded'})")
        out.append(CaseEvent.of("reopened", case, now, analyst=analyst, reason=why))
        self._reopen(case, why, now, entered)

    def _close_waiting(self, case: Case, now: datetime, out: list[CaseEvent]) -> None:
        """The monitor resolved the anomaly of a case nobody holds: close it, saying whether an analyst
        had seen it. Either way it is not one of the machine's routine closes, so it gets an outcome and
        a reason, and stays among them for review (anyone on the roster may reopen it). One nobody
        acknowledged is `unattended`, listed first for review. One an analyst acknowledged before it went
        back to the queue is `unfinished`, and the reason names who last acknowledged it: calling it
        unattended put a false "no analyst took it" in the audit record (`_review_order` has why it is
        not listed first)."""
        unserved = self._unserved(case, now)
        if case.acknowledged_by:
            outcome = UNFINISHED
            reason = (f"the monitor resolved the anomaly while the case waited for its next analyst "
                      f"(last acknowledged by {case.acknowledged_by[-1]}; {unserved})")
        else:
            outcome = UNATTENDED
            reason = f"the monitor resolved the anomaly before an analyst took the case ({unserved})"
        self._close(case, Status.AUTO_RESOLVED, now)
        case.reason, case.outcome = reason, outcome
        out.append(CaseEvent.of("auto_resolved", case, now, reason=reason, outcome=outcome))

    def _reviewer(self, person: str) -> bool:
        """Who may review the machine's decisions: the roster's analysts and its operators."""
        return person in self._roster.analysts or person in self._roster.operators

    def _reopen(self, case: Case, reason: str, now: datetime, entered: list[Case]) -> None:
        """A machine-closed case back to waiting with fresh SLAs, as if it had just arrived (`Case.since`):
        nobody has acknowledged it since, so if the monitor resolves it again before anyone does, it is
        `unattended` whoever worked it before the machine closed it."""
        case.closed_at, case.reopened_at, case.outcome, case.resolve_from = None, now, None, None
        case.acknowledged_by = []
        case.resolve_due = now + self._policy.resolve_sla[case.severity]
        self._open[case.case_id] = case
        self._to_waiting(case, reason, now, entered)

    def _check_holder(self, case: Case, analyst: str, kind: str) -> None:
        if case.status in CLOSED:
            raise ActionError(409, f"cannot {kind} {case.case_id}: it is {case.status.value}")
        if case.analyst != analyst:
            raise ActionError(403, f"{case.case_id} is not assigned to {analyst}")

    def _acknowledge(self, case: Case, analyst: str, now: datetime, out: list[CaseEvent]) -> None:
        """The holder takes it on. Remembered past their holding it (`Case.acknowledged_by`, latest
        last), so a case that goes back to the queue still says an analyst saw it."""
        if case.status is not Status.ASSIGNED:
            raise ActionError(409, f"{case.case_id} is already acknowledged")
        case.status, case.acked_at = Status.ACKNOWLEDGED, now
        # A new list, not appended to: `Case.from_dict` shares the list of the state it was given.
        case.acknowledged_by = [*(a for a in case.acknowledged_by if a != analyst), analyst]
        out.append(CaseEvent.of("acknowledged", case, now, analyst=analyst))

    def _resolve(self, case: Case, analyst: str, action: dict[str, Any], now: datetime, out: list[CaseEvent]) -> None:
        outcome = action.get("outcome")
        if outcome is not None and not isinstance(outcome, str):
            raise ActionError(400, f"outcome must be a string, got {outcome!r}")
        labels = _labels(action.get("labels"), required=False)
        self._close(case, Status.RESOLVED, now)
        case.outcome = outcome
        _merge_labels(case, labels)
        out.append(CaseEvent.of("resolved", case, now, analyst=analyst, outcome=outcome, labels=labels or None))

    def _reassign(
        self, case: Case, analyst: str, to: Any, now: datetime, out: list[CaseEvent], entered: list[Case]
    ) -> None:
        """Without `to` (absent or null), the case goes back to the pool and the optimiser picks someone
        else. A `to` that is no analyst id at all (a number, a list, "") is a malformed request (400), told
        apart from an id the roster lacks (404)."""
        if to is None:
            _avoid(case, analyst)
            self._unassign(case, f"handed back by {analyst}", now, out)
            return
        if not isinstance(to, str) or not to.strip():
            raise ActionError(400, f"to must be an analyst id (a non-empty string), got {to!r}")
        target = self._roster.analysts.get(to)
        if target is None:
            raise ActionError(404, f"no analyst {to!r} in the roster")
        if problem := self._cannot_take(case, analyst, target, now, self._loads()):
            raise ActionError(409, f"cannot reassign {case.case_id} to {to}: {to} {problem}")
        _avoid(case, analyst)
        out.append(self._assign_to(case, target, now, reason=f"reassigned by {analyst}"))

    def _cannot_take(self, case: Case, holder: str, target: Analyst, now: datetime, loads: Counter[str]) -> str | None:
        """Why `target` cannot be handed `case` by its holder now, or None when they can: the one rule the
        reassign action applies and the console's reassign list shows."""
        return (
            "is the current holder" if target.id == holder
            else f"has no skill for {case.scope}" if self._roster.skill_level(target, case.scope) == 0
            else "is not on shift" if not target.on_shift(now)
            else "has no free capacity" if loads[target.id] >= target.capacity
            else None
        )  # fmt: skip

    def _label(self, case: Case, analyst: str, raw: Any, now: datetime, out: list[CaseEvent]) -> None:
        """The holder or resolver labels their case; anyone on the roster may review the machine's."""
        machine_case = case.status is Status.AUTO_RESOLVED and self._reviewer(analyst)
        if case.analyst != analyst and not machine_case:
            raise ActionError(403, f"{case.case_id} is not assigned to {analyst}")
        labels = _labels(raw, required=True)
        _merge_labels(case, labels)
        out.append(CaseEvent.of("labelled", case, now, analyst=analyst, labels=labels))

    def _assign_to(self, case: Case, analyst: Analyst, now: datetime, reason: str | None = None) -> CaseEvent:
        self._assignments += 1
        self._last_assigned[analyst.id] = self._assignments
        case.status, case.analyst, case.assigned_at, case.acked_at = Status.ASSIGNED, analyst.id, now, None
        case.ack_due = now + self._policy.ack_sla[case.severity]  # each holder gets the full window
        self._rearm_resolve(case, now)
        return CaseEvent.of("assigned", case, now, analyst=analyst.id, reason=reason, notify=self._notify(analyst.id))

    def _unassign(self, case: Case, reason: str, now: datetime, out: list[CaseEvent]) -> None:
        """Take a case off its holder, saying so at once so nobody believes they still hold it."""
        out.append(
            CaseEvent.of("waiting", case, now, analyst=case.analyst, reason=reason, notify=self._notify(case.analyst))
        )
        self._to_waiting(case, reason, now, [])

    def _to_waiting(self, case: Case, reason: str, now: datetime, entered: list[Case]) -> None:
        """Back to the queue with a full acknowledge window: the old one ran for its holder, and a case
        handed back after it passed was escalated as "waited past the SLA" on the very next tick."""
        case.status, case.analyst, case.assigned_at, case.acked_at = Status.WAITING, None, None, None
        case.ack_due = now + self._policy.ack_sla[case.severity]
        case.reason = reason
        entered.append(case)

    def _rearm_resolve(self, case: Case, now: datetime) -> None:
        """A case taken by a holder: a resolve SLA that already passed restarts from this moment, and its
        one resolve escalation is re-armed for them. Otherwise the holder inherited a breach announced to
        the one before (often gone home: `escalation.stranded`) and was never escalated to for it; or, with
        the window restarted when the case left its holder, one that waited in the pool overnight reached
        the morning's holder already past it, who was escalated to a minute after acknowledging it."""
        case.resolve_escalated = False
        if now >= case.resolve_due:
            case.resolve_from = now
            case.resolve_due = now + self._policy.resolve_sla[case.severity]

    def _close(self, case: Case, status: Status, now: datetime) -> None:
        case.status, case.closed_at = status, now
        del self._open[case.case_id]

    def _notify(self, analyst_id: str | None) -> dict[str, str] | None:
        analyst = self._roster.analysts.get(analyst_id or "")
        return {"target": analyst.notify, "analyst": analyst.id} if analyst else None

    def _unserved(self, case: Case, now: datetime) -> str:
        """Why nobody holds a waiting case, so its events say whom it needs (nobody is notified of it)."""
        qualified = [a for a in self._roster.analysts.values() if self._roster.skill_level(a, case.scope) > 0]
        if not qualified:
            return f"no qualified analyst: nobody on the roster has a skill for {case.scope}"
        if not any(a.on_shift(now) for a in qualified):
            return f"no qualified analyst for {case.scope} is on shift"
        return f"no qualified analyst for {case.scope} on shift has free capacity"

    def _loads(self) -> Counter[str]:
        return Counter(c.analyst for c in self._open.values() if c.status in HELD and c.analyst)

    # ---- assignment ----------------------------------------------------------------------------

    def _finish(self, out: list[CaseEvent], entered: list[Case], now: datetime) -> list[dict[str, Any]]:
        """Every input ends here: fill free capacity, then say which new or escalated cases still wait."""
        out += self._dispatch(now)
        out += [
            CaseEvent.of("waiting", c, now, reason=c.reason or self._unserved(c, now))
            for c in {c.case_id: c for c in entered}.values()
            if c.status is Status.WAITING
        ]
        return [event.to_dict() for event in out]

    def _dispatch(self, now: datetime) -> list[CaseEvent]:
        """Offer the policy the waiting cases and those due for a handoff, and apply its choice."""
        waiting = sorted((c for c in self._open.values() if c.status is Status.WAITING), key=lambda c: c.seq)
        handoffs = self._due_for_handoff(now)
        if not waiting and not handoffs:
            return []
        loads = self._loads()
        stale_before = now - self._policy.weights.stale_after
        stale = {
            c.analyst
            for c in self._open.values()
            if c.status is Status.ASSIGNED and c.assigned_at is not None and c.assigned_at < stale_before
        }
        free = [
            FreeAnalyst(a.id, loads[a.id], a.capacity, self._last_assigned.get(a.id, 0), a.id in stale)
            for a in self._roster.analysts.values()
            if loads[a.id] < a.capacity and a.on_shift(now)
        ]
        offers = []
        for case in [*waiting, *handoffs] if free else []:
            # A handoff goes only to someone it has not already left: bounded, so no ping-pong.
            barred = set(case.avoid) | {case.analyst} if case.status is Status.ASSIGNED else set()
            levels = {
                f.analyst_id: level
                for f in free
                if f.analyst_id not in barred
                and (level := self._roster.skill_level(self._roster.analysts[f.analyst_id], case.scope)) > 0
            }
            if levels:
                offers.append(
                    WaitingCase(
                        case_id=case.case_id,
                        seq=case.seq,
                        priority=case.priority,
                        age_s=(now - case.since).total_seconds(),
                        levels=levels,
                        target_level=self._policy.target_level[case.severity],
                        avoid=frozenset(case.avoid),
                        slack_s=(case.since + self._policy.ack_sla[case.severity] - now).total_seconds(),
                    )
                )
        if not offers:
            return []
        assignments = self._assign(offers, free)
        _check_assignments(assignments, offers, free, self._policy.assignment)
        out: list[CaseEvent] = []
        for case_id, analyst_id in assignments:
            case = self._cases[case_id]
            if case.status is Status.ASSIGNED:
                holder, since = case.analyst or "", case.assigned_at or now
                _avoid(case, holder)
                self._unassign(case, f"not acknowledged by {holder} within {now - since}; handed on", now, out)
            out.append(self._assign_to(case, self._roster.analysts[analyst_id], now))
        return out

    def _due_for_handoff(self, now: datetime) -> list[Case]:
        """Assigned cases their holder has left unacknowledged for `handoff_after` of the ack SLA.

        The holder is most likely away (in the simulation, in a meeting), so waiting for the SLA to
        pass before moving the case guarantees the breach; moving it at, say, half the SLA to
        someone free gives the new holder time to acknowledge. It is an engine rule, so every
        policy gets it; which free analyst takes the case is the policy's choice.
        """
        share = self._policy.handoff_after
        if share is None:
            return []
        return [
            c
            for c in self._open.values()
            if c.status is Status.ASSIGNED
            and c.assigned_at is not None
            and now - c.assigned_at >= share * self._policy.ack_sla[c.severity]
        ]


def _check_assignments(
    assignments: list[tuple[str, str]], offers: list[WaitingCase], free: list[FreeAnalyst], policy: str
) -> None:
    """The invariants, enforced at the one place a policy's choice enters the state."""
    offered = {o.case_id: o for o in offers}
    room = {f.analyst_id: f.free for f in free}
    seen: set[str] = set()
    for case_id, analyst_id in assignments:
        if case_id in seen or case_id not in offered or analyst_id not in offered[case_id].levels:
            raise RuntimeError(f"assignment policy {policy!r} made an invalid choice: {case_id} -> {analyst_id}")
        seen.add(case_id)
        room[analyst_id] -= 1
        if room[analyst_id] < 0:
            raise RuntimeError(f"assignment policy {policy!r} put {analyst_id} over capacity")


def _review_order(case: Case) -> tuple[bool, float, int]:
    """Sort key for closed cases: `unattended` ones (closed without an analyst seeing them) first, then
    the rest; each group most recently closed first, then the latest to arrive.

    An `unfinished` close sorts with the rest, by when it closed: the top is for what no person saw, and
    an analyst saw this one (the reason names who last acknowledged it, the one to ask about it). Listed
    first, every case handed back or left at a shift's end and then resolved by the monitor would push
    the cases nobody saw down the list again. A version that predates the outcome orders it the same."""
    unattended = case.status is Status.AUTO_RESOLVED and case.outcome == UNATTENDED  # an analyst's outcome is free text
    return (not unattended, -(case.closed_at or case.since).timestamp(), -case.seq)


def _retention_group(case: Case) -> str:
    """The kind of close `retain_closed_count` bounds on its own (`Scheduler._prune`).

    An `unfinished` close counts with the routine ones, as it sorts with them (`_review_order`). It needs
    neither the analysts' group's guard (no analyst resolved it, so no `resolve` of theirs is replayed
    against it) nor the unattended group's (an analyst saw it), and a group of its own would raise the
    bound on the closed cases the state holds from three times `retain_closed_count` to four."""
    if case.status is Status.RESOLVED:
        return "resolved"  # by an analyst, whatever outcome they wrote
    return UNATTENDED if case.outcome == UNATTENDED else "routine"


def _avoid(case: Case, analyst: str) -> None:
    if analyst not in case.avoid:
        case.avoid.append(analyst)


def _labels(raw: Any, required: bool) -> list[dict[str, Any]]:
    if raw is None and not required:
        return []
    if not isinstance(raw, list) or not raw:
        raise ActionError(400, f"labels must be a non-empty list of {{id, topic?, sentiment?}}, got {raw!r}")
    labels = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise ActionError(400, f"each label needs a string 'id', got {item!r}")
        extra = set(item) - {"id", "topic", "sentiment"}
        if extra:
            raise ActionError(400, f"unknown label fields {sorted(extra)}")
        labels.append(dict(item))
    return labels


def _merge_labels(case: Case, labels: list[dict[str, Any]]) -> None:
    """Merge corrections into the case's labels field by field: the analyst's last word on each field
    counts, and a later correction of one field (topic) keeps an earlier one of the other (sentiment),
    as a field left out or null corrects nothing (scheduler/feedback.py)."""
    by_id = {label["id"]: label for label in case.labels}
    for label in labels:
        given = {name: value for name, value in label.items() if value is not None}
        by_id[label["id"]] = {**by_id.get(label["id"], {}), **given}
    case.labels = list(by_id.values())
