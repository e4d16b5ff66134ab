"""jobtrail benchmarks: ``python -m bench [ingest|query|agent|overload] [--quick]``.

Every figure is measured against a reference taken in the same run (decode limit, bare
OTel SDK, configured memory limit), because the machine is shared and noisy. Results are
printed as a table and written to ``bench/results/*.json``; ``docs/benchmarks.md`` explains
them.
"""
