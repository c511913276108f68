"""HTTP views on each worker's Faust web server, one `faust.web.Blueprint` per module.

A view module declares its routes on its own blueprint and registers nothing by itself;
streams/worker.py registers every blueprint on the app. Views read state through the plumbing
modules (streams/notify_state.py, streams/case_state.py, streams/health.py) and never import an agent.
"""
