"""Discrete-event simulation of analysts working cases, to compare assignment policies fairly.

Every policy sees the same arrivals and the same random draws per case (common random numbers):
the n-th acknowledgement delay of case i and its unit of work are fixed before any policy runs, so
differences in the results come from the policies, not from luck. The analysts' behaviour is
modelled, not measured; see docs/SCHEDULER.md for what the model assumes.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from .config import ASSIGNMENTS, SchedulerPolicy
from .engine import Scheduler
from .roster import Analyst, Roster, Shift

TOPICS = ("Earnings", "M&A", "Macro", "Regulation", "Credit")
SECTORS = {"Technology": ("AAPL", "MSFT", "NVDA"), "Financials": ("JPM", "GS"), "Energy": ("XOM", "CVX")}
TICKERS = tuple(t for tickers in SECTORS.values() for t in tickers)
# (region, time zone, shift hours, capacities): follow-the-sun, weekdays, with overlaps.
REGIONS = (
    ("sg", "Asia/Singapore", "08:00-17:00", (3, 2, 3)),
    ("ldn", "Europe/London", "07:00-16:00", (3, 4, 2, 3)),
    ("ny", "America/New_York", "08:00-17:00", (4, 3, 3, 2)),
)
ACK_DRAWS = 8  # acknowledgement delays drawn per case; reassignments beyond that reuse them


@dataclass(frozen=True)
class SimConfig:
    seed: int = 7
    load: float = 0.85  # offered load: arrival rate x nominal holding time / capacity on shift
    start: datetime = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
    days: int = 5  # arrivals Mon-Fri; the run continues until the queue drains
    drain: timedelta = timedelta(hours=24)
    tick: timedelta = timedelta(minutes=1)
    severity_mix: dict[str, float] = field(default_factory=lambda: {"info": 0.25, "warning": 0.55, "critical": 0.20})
    work_minutes: dict[str, float] = field(default_factory=lambda: {"warning": 45.0, "critical": 30.0})
    ack_minutes: float = 3.0  # typical time to acknowledge when at the desk
    away_share: float = 0.1  # share of time an analyst is in a meeting and acknowledges nothing
    away_minutes: float = 40.0  # mean meeting length

    def nominal_hold_minutes(self) -> float:
        """Holding time at skill level 3 with a prompt ack: the yardstick that defines offered load."""
        human = {s: p for s, p in self.severity_mix.items() if s in self.work_minutes}
        work = sum(p * self.work_minutes[s] for s, p in human.items()) / sum(human.values())
        return self.ack_minutes + self.away_share * self.away_minutes + work


def speed(level: int) -> float:
    """Work-time multiplier: an expert (5) takes 0.6 of the nominal time, a novice (1) 1.4."""
    return 1.6 - 0.2 * level


def build_roster(rng: np.random.Generator) -> Roster:
    """Every region covers every topic and sector, with levels and depth that vary by analyst."""
    analysts: dict[str, Analyst] = {}
    for region, tz, hours, capacities in REGIONS:
        for i, capacity in enumerate(capacities):
            topics = rng.choice(TOPICS, size=3, replace=False)
            sectors = rng.choice(list(SECTORS), size=2, replace=False)
            skills = {f"topic:{t}": int(rng.integers(1, 6)) for t in topics}
            skills |= {f"sector:{s}": int(rng.integers(1, 6)) for s in sectors}
            # Guarantee coverage within the region: analyst i owns topic i and sector i at level 3+.
            skills[f"topic:{TOPICS[i % len(TOPICS)]}"] = max(3, skills.get(f"topic:{TOPICS[i % len(TOPICS)]}", 0))
            if i + len(capacities) < len(TOPICS):
                skills[f"topic:{TOPICS[i + len(capacities)]}"] = 3
            sector = list(SECTORS)[i % len(SECTORS)]
            skills[f"sector:{sector}"] = max(3, skills.get(f"sector:{sector}", 0))
            analyst_id = f"{region}-{i + 1}"
            analysts[analyst_id] = Analyst(
                id=analyst_id,
                name=analyst_id,
                capacity=capacity,
                skills=skills,
                shifts=(Shift.parse(f"Mon-Fri {hours} {tz}"),),
                notify=f"https://hooks.example.com/{analyst_id}",
                token_env=f"TOKEN_{region.upper()}_{i + 1}",
            )
    return Roster(analysts, {t: s for s, tickers in SECTORS.items() for t in tickers})


@dataclass(frozen=True)
class Arrival:
    at: datetime
    anomaly: dict
    ack_delays_s: tuple[float, ...]  # at-the-desk reaction time, one per successive assignment
    work_units: float  # multiplied by the severity's mean work time and the holder's speed


def arrivals(config: SimConfig, roster: Roster, rng: np.random.Generator) -> list[Arrival]:
    """A Poisson process whose rate follows the capacity on shift, so the offered load is `load` at
    every minute (news flow follows market hours; the desks are staffed to match)."""
    human_share = sum(p for s, p in config.severity_mix.items() if s in config.work_minutes)
    per_slot_minute = config.load / config.nominal_hold_minutes() / human_share
    severities, weights = zip(*config.severity_mix.items())
    scopes = [f"topic:{t}" for t in TOPICS] + [f"ticker:{t}" for t in TICKERS]
    scope_weights = np.array([0.12] * len(TOPICS) + [0.4 / len(TICKERS)] * len(TICKERS))
    out: list[Arrival] = []
    for minute in range(config.days * 24 * 60):
        t0 = config.start + timedelta(minutes=minute)
        slots = sum(a.capacity for a in roster.analysts.values() if a.on_shift(t0))
        for offset in np.sort(rng.uniform(0, 60, size=rng.poisson(per_slot_minute * slots))):
            delays = rng.exponential(config.ack_minutes, ACK_DRAWS)
            anomaly_id = f"sim-{len(out):05d}"
            out.append(
                Arrival(
                    at=t0 + timedelta(seconds=float(offset)),
                    anomaly={
                        "anomaly_id": anomaly_id,
                        "kind": "surge",
                        "scope": str(rng.choice(scopes, p=scope_weights / scope_weights.sum())),
                        "severity": str(rng.choice(severities, p=np.array(weights) / sum(weights))),
                        "score": float(rng.uniform(3, 8)),
                        "sample_ids": [f"{anomaly_id}-n1"],
                        "headlines": [],
                    },
                    ack_delays_s=tuple(float(d) * 60 for d in delays),
                    work_units=float(rng.gamma(2.0, 0.5)),  # mean 1, less spread than exponential
                )
            )
    return out


def meetings(config: SimConfig, roster: Roster, rng: np.random.Generator) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per analyst, the intervals they are away: an analyst in a meeting acknowledges nothing."""
    horizon = timedelta(days=config.days) + config.drain
    gap_minutes = config.away_minutes * (1 - config.away_share) / config.away_share
    out: dict[str, list[tuple[datetime, datetime]]] = {}
    for analyst_id in roster.analysts:
        t, spans = config.start, []
        while t < config.start + horizon:
            t += timedelta(minutes=float(rng.exponential(gap_minutes)))
            end = t + timedelta(minutes=float(rng.exponential(config.away_minutes)))
            spans.append((t, end))
            t = end
        out[analyst_id] = spans
    return out


def back_at_desk(spans: list[tuple[datetime, datetime]], at: datetime) -> datetime:
    return next((end for start, end in spans if start <= at < end), at)


@dataclass(frozen=True)
class Metrics:
    policy: str
    cases: int  # human cases
    auto_resolved: int
    breach_rate: float  # share of human cases acknowledged or resolved past their SLA (or never)
    mean_assign_min: float  # creation -> first assignment
    p95_assign_min: float
    utilisation: float  # held case-time / capacity-time on shift
    gini: float  # of per-analyst utilisation: 0 = perfectly even
    escalations: int
    still_open: int  # human cases not resolved when the run stopped


def gini(values: list[float]) -> float:
    x = np.sort(np.asarray(values, dtype=float))
    if x.sum() == 0:
        return 0.0
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def run(
    policy: SchedulerPolicy,
    roster: Roster,
    items: list[Arrival],
    away: dict[str, list[tuple[datetime, datetime]]],
    config: SimConfig,
) -> Metrics:
    """Drive one Scheduler through the arrivals; analysts ack and resolve after their random delays."""
    engine = Scheduler(roster, policy)
    seq = itertools.count()
    queue: list[tuple[datetime, int, Callable[[], list[dict]]]] = []
    by_case = {f"case-{a.anomaly['anomaly_id']}": a for a in items}
    assignments: dict[str, int] = {}  # case -> how many times assigned, indexes the ack draws
    assigned_first: dict[str, datetime] = {}
    held_since: dict[str, tuple[str, datetime]] = {}  # case -> (holder, since)
    held_s: dict[str, float] = dict.fromkeys(roster.analysts, 0.0)
    acked: dict[str, datetime] = {}
    resolved: dict[str, datetime] = {}
    machine: set[str] = set()  # closed by the machine; the engine forgets them after retain_closed
    escalations = 0

    def push(at: datetime, fn: Callable[[], list[dict]]) -> None:
        heapq.heappush(queue, (at, next(seq), fn))

    def act(kind: str, case_id: str, analyst: str, at: datetime) -> None:
        """Schedule an analyst's action; it is void if the case changed hands in the meantime."""
        token = assignments[case_id]

        def fire() -> list[dict]:
            if assignments[case_id] != token or (engine.case(case_id) or {}).get("analyst") != analyst:
                return []
            action_id = f"{kind}-{case_id}-{token}"
            return engine.on_action(
                {"action": kind, "case_id": case_id, "analyst": analyst, "action_id": action_id}, at
            )

        push(at, fire)

    def release(case_id: str, at: datetime) -> None:
        holder, since = held_since.pop(case_id)
        held_s[holder] += (at - since).total_seconds()

    def handle(events: list[dict], at: datetime) -> None:
        nonlocal escalations
        for e in events:
            case_id, item = e["case_id"], by_case[e["case_id"]]
            if e["event"] == "assigned":
                n = assignments[case_id] = assignments.get(case_id, 0) + 1
                assigned_first.setdefault(case_id, at)
                held_since[case_id] = (e["analyst"], at)
                reaction = timedelta(seconds=item.ack_delays_s[(n - 1) % ACK_DRAWS])
                act("ack", case_id, e["analyst"], back_at_desk(away[e["analyst"]], at) + reaction)
            elif e["event"] == "acknowledged":
                acked.setdefault(case_id, at)
                level = roster.skill_level(roster.analysts[e["analyst"]], e["scope"])
                work_s = item.work_units * config.work_minutes[e["severity"]] * 60 * speed(level)
                act("resolve", case_id, e["analyst"], at + timedelta(seconds=work_s))
            elif e["event"] == "resolved":
                resolved[case_id] = at
                release(case_id, at)
            elif e["event"] == "escalated":
                escalations += 1
                if case_id in held_since and case_id not in acked:  # taken off an unresponsive holder
                    release(case_id, at)
            elif e["event"] == "waiting" and case_id in held_since:  # handed on before anyone acked
                release(case_id, at)
            elif e["event"] == "auto_resolved":
                machine.add(case_id)

    # Closures capture their own timestamp, so the heap order is the only clock.
    for item in items:
        push(item.at, lambda item=item: engine.on_anomaly(item.anomaly, item.at))
    end = config.start + timedelta(days=config.days) + config.drain
    t = config.start
    while t <= end:
        push(t, lambda t=t: engine.tick(t))
        t += config.tick
    while queue:
        at, _, fn = heapq.heappop(queue)
        handle(fn(), at)

    human = [cid for cid in by_case if cid not in machine]
    sla = policy.ack_sla, policy.resolve_sla
    breached = 0
    for cid in human:
        created, severity = by_case[cid].at, by_case[cid].anomaly["severity"]
        late_ack = cid not in acked or acked[cid] - created > sla[0][severity]
        late_resolve = cid not in resolved or resolved[cid] - created > sla[1][severity]
        breached += late_ack or late_resolve
    waits = np.array([(assigned_first[c] - by_case[c].at).total_seconds() / 60 for c in human if c in assigned_first])
    capacity_s = _capacity_seconds(roster, config)
    per_analyst = [held_s[a] / capacity_s[a] for a in roster.analysts]
    return Metrics(
        policy=policy.assignment,
        cases=len(human),
        auto_resolved=len(machine),
        breach_rate=breached / max(1, len(human)),
        mean_assign_min=float(waits.mean()) if waits.size else 0.0,
        p95_assign_min=float(np.percentile(waits, 95)) if waits.size else 0.0,
        utilisation=sum(held_s.values()) / sum(capacity_s.values()),
        gini=gini(per_analyst),
        escalations=escalations,
        still_open=sum(1 for c in human if c not in resolved),
    )


def _capacity_seconds(roster: Roster, config: SimConfig) -> dict[str, float]:
    """Capacity-seconds each analyst was on shift during the arrival period (minute resolution)."""
    out = dict.fromkeys(roster.analysts, 0.0)
    for minute in range(config.days * 24 * 60):
        t = config.start + timedelta(minutes=minute)
        for a in roster.analysts.values():
            if a.on_shift(t):
                out[a.id] += 60.0 * a.capacity
    return out


def compare(
    config: SimConfig, policy: SchedulerPolicy | None = None, progress: Callable[[str], None] = lambda _: None
) -> list[Metrics]:
    """Run the optimiser and both baselines on identical arrivals and draws."""
    rng = np.random.default_rng(config.seed)
    roster = build_roster(rng)
    items = arrivals(config, roster, rng)
    away = meetings(config, roster, rng)
    progress(f"{len(items)} arrivals over {config.days} days, {len(roster.analysts)} analysts")
    base = policy or SchedulerPolicy()
    results = []
    for name in ASSIGNMENTS:
        results.append(run(replace(base, assignment=name), roster, items, away, config))
        progress(f"{name}: done")
    return results
