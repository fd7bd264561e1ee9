"""The lab's web views (issue 17): the live dashboard and the self-contained HTML run reports.

``vendor/`` holds the one front-end package they use, vis-timeline (swimlane timelines with
zoom, ranges for fault spans, and Graph2d for media-gap plots), pinned in
``vendor/vis-timeline/VERSION`` and refreshed by ``scripts/vendor-ui.sh``.
"""
