"""Subcommands of the `finsentry` CLI that are not data sources."""
