"""``vo2dr report``: how did we do over a period? Success rate per class and store, RPO
achieved, drill history against the RTO, size growth, storage and cost per tier and cloud, and
the controls, from the stores alone (:mod:`vo2dr.records` and the backups' listings).

Plain functions, each tested directly: :mod:`.config` (what the stack file says),
:mod:`.history` (what happened), :mod:`.metrics` (windows, rates, distributions, variance,
trend), :mod:`.cost` (bytes and prices), :mod:`.build` (the JSON document), :mod:`.html`
(the self-contained HTML page; matplotlib, imported only there). Not part of the Lambda job.
"""
