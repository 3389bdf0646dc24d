"""Real purchase data run through the pipeline, to judge it against what really happened.

``cdnow``: the CDNOW purchase log (shipped with the ``lifetimes`` wheel, a dev dependency)
written as the shop's daily exports, with the holdout truth read from the raw file.
``peers``: the scores the lifecycle is compared with (recency, frequency, BG/NBD, MBG/NBD)
and the figures of the comparison (ROC AUC, repurchase rate by stage).
"""
