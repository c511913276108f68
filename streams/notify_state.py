"""The notify coordinator's state: the receivers file, its tables, and who the coordinator is.

Shared by the notify agent (which writes it), the silences API and the anomaly pages (which read
it). Every anomaly event and silence change reaches the coordinator on the single partition of
`alerts.notify`; the worker that owns that partition keeps the `Dispatcher`, the silences and an
outbox of due notifications under one key of `notify-coordinator`, and each anomaly's page under
its id in `notify-anomalies`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache

import faust

from alerts.dispatch import Dispatcher
from alerts.receivers import AlertingConfig, ConfigError, load_config
from streams.app import NOTIFY_TOPIC, app, settings
from streams.ownership import owns
from streams.tables import DurableTable
from streams.usage import config_exit

STATE_KEY = "coordinator"
CONFIG_SILENCE_PREFIX = "config-"


@cache
def alerting() -> AlertingConfig:
    """The receivers file (FINSENTRY_RECEIVERS), read once: when the worker starts (streams/worker.py
    `configure`), not at import. A bad file stops start-up with one line."""
    if settings.receivers is None:
        return AlertingConfig(receivers=())
    try:
        return load_config(settings.receivers)
    except ConfigError as exc:
        raise config_exit(f"receivers (FINSENTRY_RECEIVERS): {exc}") from None


def external_url() -> str:
    """Where alerts link to: the receivers file's external_url, else this worker's own URL (Faust's
    canonical_url). Every webhook's externalURL and generatorURL is under it, as Alertmanager always
    fills externalURL: a receiver's template that builds links from it got "" without the file's."""
    return alerting().external_url or str(app.conf.canonical_url)


coordinator_state: DurableTable = app.Table("notify-coordinator", default=None, partitions=1, use_partitioner=True,
                                            schema=faust.Schema(key_serializer="json", value_serializer="json"))

# The record behind each alert's generatorURL (alerts/pages.py, served by streams/views/anomaly_page.py).
anomaly_pages: DurableTable = app.Table("notify-anomalies", default=None, partitions=1, use_partitioner=True,
                                        schema=faust.Schema(key_serializer="json", value_serializer="json"))


@dataclass
class CoordinatorState:
    """Everything the coordinator must not forget across a restart; JSON in the table."""

    dispatcher: Dispatcher
    outbox: dict[str, dict] = field(default_factory=dict)  # id -> {receiver, payload}: due, not yet settled
    alertmanager: dict[str, dict] = field(default_factory=dict)  # fingerprint -> alert JSON to (re-)push
    pushed_at: float = float("-inf")

    def to_dict(self) -> dict:
        return {"dispatcher": self.dispatcher.to_dict(), "outbox": self.outbox, "alertmanager": self.alertmanager,
                "pushed_at": None if self.pushed_at == float("-inf") else self.pushed_at}

    @classmethod
    def from_dict(cls, d: dict | None, config: AlertingConfig) -> CoordinatorState:
        if d is None:
            state = cls(Dispatcher(config.receivers, external_url=config.external_url))
        else:
            pushed_at = float("-inf") if d["pushed_at"] is None else d["pushed_at"]
            state = cls(Dispatcher.from_dict(d["dispatcher"], config.receivers, config.external_url),
                        d["outbox"], d["alertmanager"], pushed_at)
        # Silences from the file are owned by the file: replaced on every load, under stable ids.
        items = {k: s for k, s in state.dispatcher.silences.items.items() if not k.startswith(CONFIG_SILENCE_PREFIX)}
        for i, silence in enumerate(config.silences):
            items[f"{CONFIG_SILENCE_PREFIX}{i}"] = replace(silence, id=f"{CONFIG_SILENCE_PREFIX}{i}")
        state.dispatcher.silences.items = items
        return state


def load() -> CoordinatorState:
    return CoordinatorState.from_dict(coordinator_state.get(STATE_KEY), replace(alerting(), external_url=external_url()))


async def save(state: CoordinatorState) -> None:
    """Write the state and wait until the broker has it (streams/tables.py says why)."""
    coordinator_state[STATE_KEY] = state.to_dict()
    await coordinator_state.written()


def is_coordinator() -> bool:
    return owns(NOTIFY_TOPIC)
