"""Faust agents: each module registers one agent on the app in streams.app."""
