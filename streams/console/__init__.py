"""The analyst console (issue 19): sign-in, my queue, case pages, overview, under /console/.

`views` and `feed` register on the app when imported (streams/app.py); `demo` is the demo's roster
and sign-in, importable without the app. docs/CONSOLE.md describes it all.
"""
