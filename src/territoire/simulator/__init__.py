"""A synthetic territory whose every fault is labelled: demo, tests and benchmarks.

The territory (assets, devices) and its readings are a pure function of a seed, a size
and a start day; the readings of day d depend only on days 0..d, so a real-time run, a
batch back-fill and a benchmark produce the same values for the same days.
"""
