"""Measure every registered mechanism against exact attention, and keep the figures.

This room runs models: it is the one part of ``tools`` that imports torch and
``implementations`` (importing the package itself imports neither; its modules do). For
each mechanism (causal and non-causal where both exist) and each length ``n`` it records
forward FLOPs and the peak bytes of live tensors (deterministic counts), the median wall
time of the forward and of forward+backward after warm-up at a fixed thread count, and
tokens per second. From these it fits the exponent of ``n``, finds the crossover length
from which the mechanism is faster than ``dense``, and reports the achieved FLOP rate as a
fraction of this machine's dense matrix-multiply rate, measured in the same run.

Results are data: ``catalog/measurements/<device>-<dtype>.json``, typed by
:mod:`tools.catalog.measurements` and written through :class:`tools.catalog.Store` after
every point, so an interrupted run resumes where it stopped. The site reads them and never
runs a model.

Modules:
    cli: ``python -m tools.measure``, its flags and closing output.
    run: a run: plan, resume, skip predicted-too-slow lengths, write after every point.
    workload: the setup, the variants, and the closure one point runs.
    figures: the figures of one point (counts and median times).
    counters: deterministic FLOP and live-tensor-byte counters.
    settings: the options each mechanism is measured with as ``n`` grows.
    fitting: fitted exponents of ``n`` and the crossover length with dense.
    summary: what a run's points say (exponents, crossovers, ratios at 4096).
    table: the closing table.
"""
