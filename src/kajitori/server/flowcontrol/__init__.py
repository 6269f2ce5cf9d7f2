"""API Priority and Fairness (upstream's apiserver/pkg/util/flowcontrol and its filter).

``filter.py`` is the filter the app calls between impersonation and
authorization; ``classify.py`` matches requests to FlowSchemas and priority
levels; ``queueset.py`` holds each level's seats and queues; ``debug.py``
renders the metrics and the ``/debug/api_priority_and_fairness/*`` dumps.
The configuration objects themselves are served and kept by
``registry/flowcontrol`` (decision 0084).
"""
