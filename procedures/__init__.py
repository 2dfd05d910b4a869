"""One module per procedure (`procedure=<name>`), each with the same protocol:

    artifact(cfg) -> Run   where its result lives in the run store (the key: what determines it)
    run(cfg) -> dict       get the inputs (procedures/_upstream.py: data, teacher, baselines),
                           call the method (src/<method>), save files through the run (which
                           manifests them), end with the summary; returns the metrics (a
                           sweeper reads one of them)
    summary(cfg, metrics) -> (rows, notes)
                           its summary table and notes; src.tables.print_summary prints every
                           procedure's the same way
    REPORT                 per run-store folder it writes: the settings and metrics that
                           `procedure=report` shows as columns (and a sweep's headline)

Procedures reach each other only through `_upstream` (by name). Every procedure has its
page in docs/<name>.md.
"""
