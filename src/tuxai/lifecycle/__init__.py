"""The lifecycle of a model on tuxai: pipelines of jobs that cache (docs/lifecycle.md).

    dag.py       a pipeline file (YAML, or a Python module's ``PIPELINE`` literal) → ``Pipeline``: steps,
                 ``needs:`` edges, inputs and outputs; cycles and unknown names refused (pure)
    hashing.py   content hashes: a step's code, its environment file, an artifact directory, its cache key
    records.py   the user's side: runs as JSON files, the content-addressed artifact store and lineage
    runner.py    a run: plan (cached or submitted through the SDK with ``after`` edges), wait, record

A pipeline is a client of the daemon like any user: its records live under the user's XDG data
directory, never in the root daemon's store.
"""
