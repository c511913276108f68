"""The topics a worker needs, created or checked before any agent runs.

A worker started on an empty broker used to let Faust and the broker create topics lazily: on the
embedded broker the producer's metadata then lacked the changelog topics, the first table write
raised inside aiokafka's partitioner (`partitions_for_topic` returned None), and the agents crashed
in a loop. Creating every source, sink and changelog topic up front, with the partition counts the
app declares, removes that race on any broker; checking the counts of topics that already exist
catches a cluster set up for another partition count, which would otherwise split a story's id
across two partitions of a table (Faust needs a changelog's partitions to match its source's).

Topics are created with the broker's default configuration except where `topic_configs` says
otherwise: `labels.feedback` keeps its records for ever (`retention.ms=-1`), because
`finsentry feedback export` reads it from the beginning as the whole history of corrections, and
Apache Kafka's default of 7 days would silently drop older ones from every later training file.
It is not compacted: its records are keyed by story id and carry only the labels a correction
changed, so compaction would erase a sentiment correction once a topic-only one followed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.settings import Settings, SettingsError

KEEP_FOREVER: dict[str, str] = {"retention.ms": "-1"}  # delete policy, never by age (not compact)

# Apache Kafka answers DescribeCluster with a random base64 id; Tansu with this fixed one.
TANSU_CLUSTER_ID = "tansu_cluster"


class TopicError(SettingsError):
    """A topic exists with a partition count the app cannot work with; the message names both."""


def required_topics(app: Any) -> dict[str, int]:
    """Every topic the app declares (sources, sinks, internal) and every table's changelog, with partitions.

    Shape: {topic name: partition count}. A topic declared without a count gets the app's
    `topic_partitions`. Faust's own leader topic is left to Faust (one partition, created by it).
    """
    default = app.conf.topic_partitions
    wanted: dict[str, int] = {}
    for topic in app.declared_topics:
        for name in topic.topics:
            wanted[name] = topic.partitions or default
    for table in app.tables.values():
        wanted[table.changelog_topic.get_topic_name()] = table.partitions or default
    return wanted


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """{topic: configs to create it with} for the topics that must not keep the broker's defaults."""
    return {settings.topic_feedback: dict(KEEP_FOREVER)}


def new_topics(wanted: Mapping[str, int], existing: set[str], replication: int,
               configs: Mapping[str, Mapping[str, str]]) -> list[Any]:
    """The NewTopic requests for the wanted topics that do not exist yet, each with its configs."""
    from kafka.admin import NewTopic

    return [NewTopic(name, count, replication, topic_configs=dict(configs.get(name, {})))
            for name, count in sorted(wanted.items()) if name not in existing]


def ensure_topics(bootstrap: list[str], wanted: Mapping[str, int], replication: int = 1,
                  timeout: float = 30.0, configs: Mapping[str, Mapping[str, str]] | None = None,
                  **kafka_options: Any) -> str | None:
    """Create the missing topics and check the others' partition counts; returns the cluster id.

    `configs` are the topic configs to create topics with (`topic_configs`; none: the broker's
    defaults). A topic that already exists keeps its
    configs: docs/OPERATIONS.md says how to change labels.feedback's retention on an old cluster.
    `kafka_options` are kafka-python security arguments (Settings.kafka_python_options).
    Raises TopicError naming the first topic whose partition count differs from what it needs.
    """
    from kafka.admin import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    configs = configs or {}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **kafka_options)
    try:
        cluster_id = admin.describe_cluster().get("cluster_id")
        existing = set(admin.list_topics())
        missing = new_topics(wanted, existing, replication, configs)
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:  # another worker created them meanwhile; the check below decides
                pass
        found = partition_counts(admin, sorted(wanted))
    finally:
        admin.close()
    for name, count in sorted(wanted.items()):
        if found.get(name) != count:
            raise TopicError(f"topic {name} has {found.get(name, 0)} partition(s), this worker needs {count}: "
                             f"set FINSENTRY_PARTITIONS to match the cluster, or recreate the topic")
    return cluster_id


def partition_counts(admin: Any, names: list[str]) -> dict[str, int]:
    """{topic: number of partitions} for the named topics that exist."""
    # kafka-python 3 names the field "name", 2.x "topic".
    return {t.get("name", t.get("topic")): len(t["partitions"]) for t in admin.describe_topics(names)
            if not t.get("error_code")}
