"""Fixtures for the client tests: where `ondo serve` listens (set by run.sh)."""

import os

import pytest
from openai import OpenAI


@pytest.fixture(scope="session")
def base_url() -> str:
    return os.environ["ONDO_BASE_URL"]


@pytest.fixture(scope="session")
def api_key() -> str:
    return os.environ["ONDO_API_KEY"]


@pytest.fixture(scope="session")
def model() -> str:
    return os.environ["ONDO_MODEL_NAME"]


@pytest.fixture(scope="session")
def client(base_url: str, api_key: str) -> OpenAI:
    return OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120)
