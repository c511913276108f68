"""The analyst console (issue 19): sign-in, my queue, case pages, overview, under /console/.

`views` is a blueprint and `feed` an agent, both listed in streams/worker.py; `demo` is the demo's roster
and sign-in, importable without the app. docs/CONSOLE.md describes it all.
"""
