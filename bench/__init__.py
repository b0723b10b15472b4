"""Lamina benchmarks: scripts that print figures (and keep them as JSON in bench/results/).

Run ``python -m bench.run`` (or ``make bench``); ``--quick`` for a small smoke run,
``--only``/``--targets`` to pick benchmarks and set-ups. See docs/benchmarks.md. Nothing here
asserts wall-clock times: benchmarks measure and print, tests check behaviour."""
