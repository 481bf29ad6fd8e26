"""What people read: validation against the committed profiles, fit reports and the dashboard.

``validate`` scores the coefficient files on the profiles (with ``metrics``, the accuracy
and coverage summaries, ``baselines``, today's calculators on the same profiles,
``validate_render`` for the text and ``validate_seed`` for the seed plan's explanations);
``fit_report`` writes the per-framework markdown and PNG reports; ``dashboard`` builds the
static ``reports/index.html`` from ``svg`` charts, and ``browser`` screenshots it in headless
Chromium. The top layer: it may import every other layer.
"""
