"""Faust agents: each module registers its agents and timers on the app (streams/app.py) when
streams/worker.py, the one list of what a worker runs, imports it. Agents never import one another."""
