"""The SIP Cluster node's exception tree: each is a request or event its state tables refuse."""

from __future__ import annotations


class ClusterError(Exception):
    """Base of every error the SIP Cluster node raises."""
