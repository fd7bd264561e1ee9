"""Tests of the WWE client (clients/wwe)."""
