"""The Faust app and every topic it uses, declared in one screen; nothing here runs anything.

Agents, timers and views register themselves on this app when their modules are imported, and the
one list of those modules is streams/worker.py, the worker's entry point: `finsentry worker -l info
--web-port 6066`, or `faust -A streams.worker worker`. This module imports no agent or view, so any
of them can import it. Settings come from FINSENTRY_* variables (streams/settings.py).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any, cast

import faust

from streams import failures, lenient_json
from streams.consumer import Consumer, Transport
from streams.settings import Settings, SettingsError
from streams.tables import DurableTable
from streams.usage import config_exit

try:
    settings = Settings.load()
except SettingsError as exc:  # one line and exit 2, whether `finsentry worker` or `faust -A` imported the app
    raise config_exit(str(exc)) from None


# Tansu only (streams/broker.py): its end offsets are wrong for multi-record batches, which breaks
# table recovery, and group joins wait the whole session timeout. Applied when FINSENTRY_EMBEDDED=1,
# or when FINSENTRY_EMBEDDED is unset and the broker says it is Tansu (streams/topics.py).
TANSU_WORKAROUNDS: dict[str, Any] = {"producer_max_batch_size": 1, "broker_session_timeout": 6.0,
                                     "broker_heartbeat_interval": 1.0, "broker_rebalance_timeout": 6.0}


# Faust's aiokafka driver asks brokers to hold an empty fetch for up to 1500 ms. Apache Kafka answers a
# fetch as soon as a record arrives; Tansu's answer came later the longer the wait allowed: median
# delivery delay 402 ms at 1500, 129 at 500, 44 at 200, 9 at 100, 7 at 50 and 11 at 10 (one consumer,
# 10 records/s over 4 partitions), added at every hop. Below 100 ms nothing is gained, and the idle
# fetches of a worker's many partitions cost CPU (docs/PERFORMANCE.md).
FAUST_FETCH_MAX_WAIT_MS = 1500
TANSU_FETCH_MAX_WAIT_MS = 100


def fetch_max_wait(s: Settings, tansu: bool) -> int:
    """The consumer's fetch.max.wait.ms: FINSENTRY_CONSUMER_FETCH_MAX_WAIT_MS, else per broker."""
    if s.consumer_fetch_max_wait_ms is not None:
        return s.consumer_fetch_max_wait_ms
    return TANSU_FETCH_MAX_WAIT_MS if tansu else FAUST_FETCH_MAX_WAIT_MS


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
        # Faust's JSON, except that bytes it cannot decode reach the agent as bytes, to be dead-lettered
        # with the record's origin: with plain JSON such a record was acknowledged, logged and gone.
        "value_serializer": lenient_json.NAME,
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
        # Faust's worker left the root logger at DEBUG for its spinner (streams/faust_worker.py).
        "Worker": "streams.faust_worker:Worker",
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


# Seconds the last commit of a stopping worker may take before the stop goes on without it.
CLOSE_COMMITS_TIMEOUT_S = 5.0


class App(faust.App):
    """Faust's app with a consumer that is safe for records fetched before a seek and never commits
    past failed, unfinished or in-flight work (streams/consumer.py), and a list of every topic it
    declares (streams/topics.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.declared_topics: list[faust.TopicT] = []
        # Read when the consumer is built (streams/consumer.py ConsumerThread).
        self.fetch_max_wait_ms = fetch_max_wait(settings, tansu=bool(settings.embedded))

    def topic(self, *topics: str, **kwargs: Any) -> Any:
        declared = super().topic(*topics, **kwargs)
        self.declared_topics.append(declared)
        return declared

    def use_tansu_workarounds(self) -> None:
        """Apply TANSU_WORKAROUNDS before the worker starts (they are read when the clients are built)."""
        for name, value in TANSU_WORKAROUNDS.items():
            setattr(self.conf, name, value)
        self.fetch_max_wait_ms = fetch_max_wait(settings, tansu=True)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    async def on_stop(self) -> None:
        # Mode runs this before it stops the app's children, so before the agents, whose streams
        # acknowledge the events they held unfinished. Bounded: aiokafka retries a commit without
        # end while the broker is gone, and a supervisor's grace period is short.
        try:
            if self._consumer is not None and not self.client_only:
                await asyncio.wait_for(cast(Consumer, self._consumer).close_commits(), CLOSE_COMMITS_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the stop goes on; the next worker reads from the last commit
            logging.getLogger(__name__).warning("the last commit before stopping failed: %r", exc)
        finally:
            await super().on_stop()

    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        # Faust's own hook commits here, past the batch the agent failed on: that lost stories. (No
        # DecodeError reaches here: every JSON key and value is read with lenient_json.)
        failures.agent_failed(agent.name, exc, settings.crash_exit_delay_seconds)


app = App(settings.app_id, **faust_config(settings))


PRODUCER = "producer"  # the name a refused send fails under: in FAILURES, /readyz and finsentry_agent_crashes_total


class SendRefused(RuntimeError):
    """The broker did not take a record the worker sent (the message names the topic and the cause)."""


class SendFailures(faust.Sensor):
    """A record the broker refused to take (its send's acknowledgement failed: a timeout, a record
    too large, an authorisation error) is a machinery failure, wherever it was sent from: Faust only
    logs it, and the agent that sent it has moved on. Marking FAILURES stops every commit after it
    (streams/consumer.py flushes before checking), reports the worker not ready, and stops it."""

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int, valsize: int) -> Any:
        return topic

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        refused = SendRefused(f"send to {state} refused: {type(exc).__name__}: {exc}")
        failures.agent_failed(PRODUCER, refused, settings.crash_exit_delay_seconds)


app.sensors.add(SendFailures())

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

# Internal topics with one partition: each is the input of a single writer (streams/ownership.py).
NOTIFY_TOPIC = "alerts.notify"
INBOX_TOPIC = "scheduler.inbox"
notify_topic = app.topic(NOTIFY_TOPIC, partitions=1, internal=True)
inbox_topic = app.topic(INBOX_TOPIC, partitions=1, internal=True)

# The monitor's input: `news.scored` read as bytes, so a foreign producer's garbage reaches the
# dead-letter topic intact, re-keyed by scope onto `news.by-scope`. JSON keys there and in the
# monitor's table: both partition a scope by the same bytes, so the changelog partition the timer
# writes to (use_partitioner) is the partition the scope's stories arrive on. Keys that are not
# JSON reach the monitor as bytes (lenient_json), as values do on every topic.
BY_SCOPE_TOPIC = "news.by-scope"
scored_bytes = app.topic(settings.topic_scored, value_serializer="raw", partitions=settings.partitions)
by_scope_topic = app.topic(BY_SCOPE_TOPIC, partitions=settings.partitions, internal=True,
                           key_serializer=lenient_json.NAME)
