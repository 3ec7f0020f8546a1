"""A simulated hospital the insurance office would believe, posted to a running drgwatch.

`hospital` holds the departments, doctors, items and care pathways as data;
`simulation` plans the stays and writes them out as events (pure, deterministic for a
seed and a clock); `run` posts them: a fortnight of history, then a live phase on the
real clock, resumable.
"""
