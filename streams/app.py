"""The Faust app, declared in one screen: settings, topics, and the agents that run on them.

Run it with Faust's own CLI: `finsentry worker -l info --web-port 6066` (or `faust -A streams.app
worker`). Settings come from FINSENTRY_* variables (streams/settings.py).
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from streams import failures
from streams.consumer import Transport
from streams.settings import Settings
from streams.tables import DurableTable

settings = Settings.load()


# Tansu only (streams/broker.py): its end offsets are wrong for multi-record batches, which breaks
# table recovery, and group joins wait the whole session timeout. Applied when FINSENTRY_EMBEDDED=1,
# or when FINSENTRY_EMBEDDED is unset and the broker says it is Tansu (streams/topics.py).
TANSU_WORKAROUNDS: dict[str, Any] = {"producer_max_batch_size": 1, "broker_session_timeout": 6.0,
                                     "broker_heartbeat_interval": 1.0, "broker_rebalance_timeout": 6.0}


def faust_config(s: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker": s.broker,
        "store": s.store,
        "datadir": str(s.data_dir),
        "topic_partitions": s.partitions,
        "topic_replication_factor": s.replication,
        "web_port": s.web_port,
        "web_host": s.web_host,
        "web_bind": s.web_bind,
        "value_serializer": "json",
        "key_serializer": "raw",
        "consumer_auto_offset_reset": "earliest",
        "processing_guarantee": "at_least_once",
        "stream_wait_empty": False,
        # Faust's built-in /router, /table, /graph and statistics views would serve every table's
        # contents (cases, headlines of hidden tickers) to anyone: docs/SECURITY.md lists what is served.
        "web_router_enabled": False,
        "web_tables_enabled": False,
        "web_graph_enabled": False,
        "web_stats_enabled": False,
        # Every table's writes can be awaited before the input that caused them is acknowledged.
        "Table": DurableTable,
    }
    if s.embedded:
        config.update(TANSU_WORKAROUNDS)
    credentials = _credentials(s)
    if credentials is not None:
        config["broker_credentials"] = credentials
    return config


def _credentials(s: Settings) -> Any:
    protocol = s.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl.create_default_context(cafile=str(s.kafka_ssl_cafile) if s.kafka_ssl_cafile else None)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    assert s.kafka_sasl_mechanism and s.kafka_sasl_username  # Settings refuses SASL_* without them
    password = s.kafka_password() or ""
    mechanism = s.kafka_sasl_mechanism
    if mechanism == "PLAIN":
        return faust.SASLCredentials(username=s.kafka_sasl_username, password=password,
                                     ssl_context=context if protocol == "SASL_SSL" else None)
    return faust.SASLCredentials(username=s.kafka_sasl_username, password=password, mechanism=mechanism,
                                 ssl_context=context if protocol == "SASL_SSL" else None)


class App(faust.App):
    """Faust's app with a consumer that is safe for records fetched before a seek and never commits
    past failed work (streams/consumer.py), and a list of every topic it declares (streams/topics.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.declared_topics: list[faust.TopicT] = []

    def topic(self, *topics: str, **kwargs: Any) -> Any:
        declared = super().topic(*topics, **kwargs)
        self.declared_topics.append(declared)
        return declared

    def use_tansu_workarounds(self) -> None:
        """Apply TANSU_WORKAROUNDS before the worker starts (they are read when the clients are built)."""
        for name, value in TANSU_WORKAROUNDS.items():
            setattr(self.conf, name, value)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        # Faust's own hook commits here, past the batch the agent failed on: that lost stories.
        failures.agent_failed(agent.name, exc, settings.crash_exit_delay_seconds)


app = App(settings.app_id, **faust_config(settings))

# Topics. `news.raw` is read as bytes so malformed input reaches the dead-letter topic intact.
raw_topic = app.topic(settings.topic_raw, value_serializer="raw", partitions=settings.partitions)
clean_topic = app.topic(settings.topic_clean, partitions=settings.partitions, internal=True)
scored_topic = app.topic(settings.topic_scored, partitions=settings.partitions)
deadletter_topic = app.topic(settings.topic_deadletter, partitions=settings.partitions)
anomalies_topic = app.topic(settings.topic_anomalies, partitions=settings.partitions)
alerts_deadletter_topic = app.topic(settings.topic_alerts_deadletter, partitions=settings.partitions)
case_events_topic = app.topic(settings.topic_case_events, partitions=settings.partitions)
case_actions_topic = app.topic(settings.topic_case_actions, partitions=settings.partitions)
feedback_topic = app.topic(settings.topic_feedback, partitions=settings.partitions)

# Agents register themselves on import.
from streams import (
    anomaly_page,  # noqa: F401
    api,  # noqa: F401
    health,  # noqa: F401
    web,  # noqa: F401
)
from streams.agents import case_webhooks, classify, ingest, monitor, notify, schedule  # noqa: F401
from streams.console import feed as console_feed  # noqa: F401 - the analyst console (docs/CONSOLE.md)
from streams.console import views as console_views  # noqa: F401
