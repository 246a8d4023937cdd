"""Fixtures for the `ondo` package tests: the test models and the `ondo` binary.

A missing asset skips its tests with the reason (shown by `pytest -rs`); under CI (`CI=true`)
it fails them instead, as the Rust tests do (crates/ondo-testdata).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MODELS = Path(os.environ.get("ONDO_TEST_MODELS", Path.home() / ".cache" / "ondo-test-models"))
SHARED = ROOT.parent / "shared"


def need(path: Path, what: str, fix: str = "run ../shared/models/fetch.sh") -> Path:
    if path.exists():
        return path
    msg = f"{what}: {path} is missing ({fix})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{msg}; CI must have every asset")
    print(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def smollm2() -> str:
    return str(need(MODELS / "smollm2-135m-instruct-q4_1.gguf", "SmolLM2-135M-Instruct Q4_1"))


@pytest.fixture(scope="session")
def smollm2_hf() -> Path:
    return need(MODELS / "smollm2-135m-instruct-hf", "SmolLM2-135M-Instruct HF folder")


@pytest.fixture(scope="session")
def stories() -> str:
    return str(need(SHARED / "models" / "stories260K" / "stories260K.gguf", "stories260K"))


@pytest.fixture(scope="session")
def llm(smollm2: str):
    from ondo import LLM

    return LLM(model=smollm2, seed=0)


@pytest.fixture(scope="session")
def ondo_bin() -> str:
    env = os.environ.get("ONDO_BIN")
    if env:
        return str(need(Path(env), "the ondo binary (ONDO_BIN)", "cargo build -p ondo"))
    for profile in ("release", "debug"):
        p = ROOT / "target" / profile / "ondo"
        if p.exists():
            return str(p)
    return str(need(ROOT / "target" / "release" / "ondo", "the ondo binary", "cargo build --release -p ondo"))
