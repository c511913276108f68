"""Producers of `news.raw` records: a synthetic generator, an RSS/Atom scraper and the Kafka sink they share.

Nothing here imports Faust: sources only write JSON values to a topic (or a file), so they can run
on a laptop against any Kafka-compatible broker.
"""
