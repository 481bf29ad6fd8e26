"""Test-wide settings: the suite never reaches the network.

``HF_HUB_OFFLINE=1`` for every test, so a model id missing from the registry cannot start a
Hub download (or ~23 s of huggingface_hub retries where no network is). Tests of the Hub
path replace huggingface_hub's transport with a fake Hub and unset it themselves.
"""

import pytest


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
