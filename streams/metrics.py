"""Every Prometheus metric the worker exports, declared in one place.

Names follow Prometheus conventions: the `finsentry_` prefix, base units (seconds), `_total` for
counters. Label values are bounded: stages and reasons are fixed sets, topics come from the model's
label map, analysts and receivers from configuration, and tickers only from the configured
watch-list (see `ticker_label`). Buckets are chosen for the ranges measured in bench/; scoring
latency reaches to 5 minutes so a backlog shows as a latency, not as an overflow into +Inf.

`finsentry_model_info` (an Info) declares no labels: prometheus_client takes them from the first
`.info()` call, made when the model loads (streams/loaded_model.py). They are `version` (the
model card's version), `variant` (e.g. int8 or fp16) and `provider` (the ONNX Runtime execution provider,
e.g. CPUExecutionProvider), one series per worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import get_args

from prometheus_client import Counter, Gauge, Histogram, Info, disable_created_metrics
from prometheus_client.samples import Sample

# `_created` series double every counter for no dashboard use.
disable_created_metrics()

# finsentry_webhook_deliveries_total's outcomes.
DELIVERED, RETRIED, FAILED, DEAD_LETTERED, SILENCED = "delivered", "retried", "failed", "deadletter", "silenced"
WEBHOOK_OUTCOMES = (DELIVERED, RETRIED, FAILED, DEAD_LETTERED, SILENCED)
# finsentry_stories_adjusted_total's adjustments
RECEIVED_TIME, TRUNCATED, DROPPED_FIELD = "received_time", "truncated", "dropped_field"

RECORDS_IN = Counter("finsentry_records_in_total", "Records taken from a topic by a stage.", ["stage"])
RECORDS_OUT = Counter("finsentry_records_out_total", "Records emitted by a stage.", ["stage"])
RECORDS_REJECTED = Counter(
    "finsentry_records_rejected_total",
    "Records a stage rejected and sent to the dead-letter topic, by reason.",
    ["stage", "reason"],
)
# Ingest keeps a story whose ticker list names something that is not a ticker; it drops that entry.
TICKERS_DROPPED = Counter("finsentry_tickers_dropped_total", "Tickers ingest dropped from stories it kept.")
# Stories kept with the receive time because their own date was missing or unreadable, and stories cut to fit.
STORIES_ADJUSTED = Counter(
    "finsentry_stories_adjusted_total",
    "Stories ingest kept after adjusting them: published_at from the receive time, text truncated, or a "
    "field it could not keep dropped.",
    ["adjustment"],
)
DUPLICATES = Counter(
    "finsentry_duplicates_total", "Records dropped as repeats of an id already processed.", ["stage"]
)

STALE_RECORDS = Counter(
    "finsentry_consumer_stale_records_total",
    "Records dropped by the seek guard (streams/consumer.py): below the offset their partition was sought to "
    "(committed already), or from a fetch that started ahead of it (read again from there).",
)

BATCH_SIZE = Histogram(
    "finsentry_classify_batch_size",
    "Texts per classification batch.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
INFERENCE_SECONDS = Histogram(
    "finsentry_inference_seconds",
    "Wall time of one classification batch (tokenise + model).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
# Seconds; up to 5 minutes so a backlog shows as a latency, not as an overflow into +Inf.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
SCORING_LATENCY = Histogram(
    "finsentry_scoring_latency_seconds",
    "From the raw record's Kafka timestamp to its scored record being produced.",
    buckets=LATENCY_BUCKETS,
)
HOP_LATENCY = Histogram(
    "finsentry_hop_latency_seconds",
    "From an input record's Kafka timestamp until the broker has acknowledged what the agent makes of it: the "
    "wait on its topic plus the agent's own work and send, per pipeline agent (ingest, classify, monitor-fanout, "
    "monitor).",
    ["agent"],
    buckets=LATENCY_BUCKETS,
)
SCORED = Counter("finsentry_scored_total", "Scored records by topic and sentiment.", ["topic", "sentiment"])
TICKER_SCORED = Counter(
    "finsentry_ticker_scored_total",
    "Scored records by watch-listed ticker and sentiment; other tickers count as 'other'.",
    ["ticker", "sentiment"],
)
NEGATIVE_SHARE = Gauge(
    "finsentry_negative_share_ratio", "Negative share of the last closed window, per topic.", ["topic"]
)

MODEL_RECHECKED = Counter(
    "finsentry_model_rechecked_total",
    "Texts whose int8 prediction was uncertain and ran again on the fp16 weights (models/recheck.py).",
)

LATE_STORIES = Counter(
    "finsentry_monitor_late_stories_total",
    "Story observations a scope ignored because their window had closed (older than the allowed lateness).",
)

ANOMALIES = Counter(
    "finsentry_anomalies_total", "Anomaly lifecycle events by kind, severity and event.", ["kind", "severity", "event"]
)
ANOMALIES_ACTIVE = Gauge("finsentry_anomalies_active", "Anomalies currently open.", ["kind"])

CASES = Counter("finsentry_cases_total", "Case events by type.", ["event"])
# The scheduler's case events (the names of its CaseEvent.of calls), exported at 0 from start-up.
CASE_EVENTS = ("created", "assigned", "waiting", "acknowledged", "escalated", "updated", "reopened", "resolved",
               "labelled", "auto_resolved")
CASE_ACTIONS_REJECTED = Counter(
    "finsentry_case_actions_rejected_total",
    "Case actions the scheduler dropped because they were unsigned or badly signed (streams/action_signing.py).",
    ["reason"],
)
CASE_ACTION_REJECTIONS = ("unsigned", "bad_signature")


class OwnedGauge(Gauge):
    """An unlabelled gauge that only one worker can know, the owner of what it measures: no sample until
    it is set, and none again after `withdraw()`. Rules and dashboards take max() across workers, which
    skips a worker with no series but would pick a worker's last value, kept after it stopped owning."""

    def _metric_init(self) -> None:
        super()._metric_init()
        self._shown = False

    def set(self, value: float) -> None:
        super().set(value)
        self._shown = True

    def withdraw(self) -> None:
        """No sample from now until the next `set`."""
        self._shown = False

    def _child_samples(self) -> Iterable[Sample]:
        return super()._child_samples() if self._shown else ()


# The scheduler's load, published only by the worker that owns scheduler.inbox (streams/agents/schedule.py)
# and withdrawn when it loses it.
CASES_OPEN = Gauge("finsentry_cases_open", "Open cases held by each analyst.", ["analyst"])
CASES_WAITING = OwnedGauge("finsentry_cases_waiting", "Cases waiting for an analyst.")
CASES_OVER_SLA = OwnedGauge("finsentry_cases_over_sla", "Open cases past their acknowledge SLA (counted from "
                            "creation or reopening), and acknowledged ones past their resolve SLA whose holder is "
                            "off shift.")
ANALYST_UTILISATION = Gauge(
    "finsentry_analyst_utilisation_ratio", "Open cases over capacity, per analyst.", ["analyst"]
)
ACK_SECONDS = Histogram(
    "finsentry_case_ack_seconds",
    "Time from case creation, or its last reopening, to acknowledgement.",
    buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400),
)

WEBHOOK_DELIVERIES = Counter(
    "finsentry_webhook_deliveries_total",
    "Webhook deliveries by receiver and outcome (delivered, retried, failed: a round failed and is tried "
    "again later, deadletter, silenced).",
    ["receiver", "outcome"],
)
# Known outcomes are exported at 0 from start-up, so the first failure is an increase, not a new series.
ALERTMANAGER_PUSH_OUTCOMES = ("ok", "error")
ALERTMANAGER_PUSHES = Counter(
    "finsentry_alertmanager_push_total",
    "Pushes of the active alerts to Alertmanager (FINSENTRY_ALERTMANAGER_URL) by outcome (ok, error).",
    ["outcome"],
)
for _outcome in ALERTMANAGER_PUSH_OUTCOMES:
    ALERTMANAGER_PUSHES.labels(_outcome)
WEBHOOK_SECONDS = Histogram(
    "finsentry_webhook_delivery_seconds",
    "Wall time of one webhook HTTP request.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

CONSUMER_LAG = Gauge(
    "finsentry_consumer_lag_records", "End offset minus committed offset per assigned partition.", ["topic", "partition"]
)
CONSUMER_STALLED = Gauge(
    "finsentry_consumer_stalled_seconds",
    "Per assigned partition: how long it has had records the worker has not finished (held, fetched and not "
    "handed on, or handed on and dropped), without its committed offset moving; 0 while it moves or has none.",
    ["topic", "partition"],
)
ASSIGNED_PARTITIONS = Gauge(
    "finsentry_assigned_partitions", "Partitions of the agents' topics currently assigned to this worker."
)
AGENT_CRASHES = Counter(
    "finsentry_agent_crashes_total",
    "Agent bodies that raised (a machinery failure); each stops the worker without committing (streams/failures.py).",
    ["agent"],
)
MODEL_INFO = Info("finsentry_model", "The loaded classifier: version, variant and execution provider.")
READY = Gauge("finsentry_ready", "1 when partitions are assigned, tables recovered, the model loaded, no agent "
              "has crashed and no partition is stalled (/readyz says which check fails).")

OTHER_TICKER = "other"


def expose_known_series(stages: tuple[str, ...], reasons: tuple[str, ...], receivers: tuple[str, ...],
                        agents: tuple[str, ...]) -> None:
    """Create every series whose label values are known before the first event, at 0.

    A labelled counter is otherwise born at its first increment, and Prometheus' `increase()` and
    `rate()` cannot count the step from "absent" to 1: the first dead letter, webhook failure or
    agent crash would never fire its alert, and the first anomaly or case event of each kind in each
    process would be missing from the dashboards (anomalies are rare, so that is most of them).
    """
    from alerts.detectors import KINDS  # here, not at the top: scipy is no import for every metrics user
    from alerts.records import SEVERITIES, EventType

    for kind in KINDS:
        for severity in SEVERITIES:
            for event in get_args(EventType):
                ANOMALIES.labels(kind, severity, event)
    for event in CASE_EVENTS:
        CASES.labels(event)
    for stage in stages:
        RECORDS_IN.labels(stage)
        RECORDS_OUT.labels(stage)
        DUPLICATES.labels(stage)
        for reason in reasons:
            RECORDS_REJECTED.labels(stage, reason)
    expose_receivers(receivers)
    for agent in agents:
        AGENT_CRASHES.labels(agent)
    for adjustment in (RECEIVED_TIME, TRUNCATED, DROPPED_FIELD):
        STORIES_ADJUSTED.labels(adjustment)
    for reason in CASE_ACTION_REJECTIONS:
        CASE_ACTIONS_REJECTED.labels(reason)


def expose_receivers(receivers: Iterable[str]) -> None:
    """Create each webhook receiver's delivery series at 0 (those that exist are left as they are): the
    configured alert receivers at start-up, and analysts' case-notification receivers (`analyst-<id>`)
    at start-up and whenever a roster reload adds one (streams/agents/case_webhooks.py)."""
    for receiver in receivers:
        for outcome in WEBHOOK_OUTCOMES:
            WEBHOOK_DELIVERIES.labels(receiver, outcome)


def ticker_label(ticker: str, watchlist: frozenset[str]) -> str:
    """Keep ticker label cardinality bounded by the configured watch-list."""
    return ticker if ticker in watchlist else OTHER_TICKER


def count_adjustments(story: object) -> None:
    """Count what ingest changed in a story it kept (a streams.validation.Story)."""
    dropped = len(getattr(story, "dropped_tickers", ()))
    if dropped:
        TICKERS_DROPPED.inc(dropped)
    if getattr(story, "published_at_source", "source") == "received":
        STORIES_ADJUSTED.labels(RECEIVED_TIME).inc()
    if getattr(story, "truncated", False):
        STORIES_ADJUSTED.labels(TRUNCATED).inc()
    if getattr(story, "dropped_fields", ()):
        STORIES_ADJUSTED.labels(DROPPED_FIELD).inc()


def when_acknowledged(sent: asyncio.Future, count: Callable[[], None]) -> None:
    """Run `count` (the emitting stage's metric updates) once the broker has acknowledged `sent`, without
    the agent waiting for it: a stage counts only what the broker took, and still pipelines its sends.
    A refused or cancelled send counts nothing; the refusal itself is the machinery failure that
    streams/failures.py's SendFailures counts and stops the worker on."""
    sent.add_done_callback(lambda done: None if done.cancelled() or done.exception() is not None else count())

