"""One module per procedure (`procedure=<name>`), each with the same protocol:

    artifact(cfg) -> Run   where its result lives in the run store (the key: what determines it)
    run(cfg) -> dict       find the inputs, call the method (src/<method>), store the artifact,
                           print the summary; returns the metrics (a sweeper reads one of them)

Procedures reach each other only through `_upstream` (by name). Every procedure has its
page in docs/<name>.md.
"""
