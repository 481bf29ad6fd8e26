"""Records and facts: profiles, the model registry, GPUs and framework defaults.

``profiles`` validates, loads and writes profile records (schema
``fitting/schemas/profile-v1.schema.json``); ``registry`` resolves model ids to
architectures from the package data ``registry.yaml``, which ``build_registry`` generates;
``gpus`` is the GPU table, ``frameworks`` the per-framework facts and defaults;
``public_logs`` (with ``public_logs_rules``) converts published measurements into
profiles and ``seed_plan`` writes the seed plan's own figures as excluded profiles.
This layer may import the physics layer only. This file imports nothing, so that the
registry and the GPU table load without the converters.
"""
