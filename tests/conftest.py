from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from devtools.tiny_model import make_tiny_model
from tests.support.accounts import ROLE_NAMES, make_user

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def users(db) -> dict[str, User | None]:
    """Named users, one per role, plus a logged-in user with no role and anonymous (None)."""
    named = {role: make_user(role, role) for role in ROLE_NAMES}
    named["norole"] = make_user("norole")
    named["anonymous"] = None
    return named


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness buys nothing in tests that create dozens of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def empty_broker():
    from tests.support.processes import purge_broker

    purge_broker()


# --- expensive fixtures, built once per session ----------------------------------------------


@pytest.fixture(scope="session")
def train_venv() -> Path:
    """The training virtualenv (LLaMA-Factory + DeepSpeed); `make train-env` builds it."""
    venv = Path(os.environ.get("SKYBOARD_TRAINING_VENV", REPO / ".venv-train"))
    if not (venv / "bin" / "llamafactory-cli").exists():
        pytest.fail(f"training virtualenv missing at {venv}: run `make train-env` first")
    return venv


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen2 checkpoint (devtools.tiny_model), shared by every test."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen2")


@pytest.fixture
def published_results():
    """The published reference figures (Sky-T1 report) that migration 0008 fills. A
    transactional test (live server, real workers) ends with a flush that empties every table,
    so a later one that compares against them puts them back first."""
    from django.apps import apps

    migration = importlib.import_module("experiments.migrations.0008_evaluation_published")
    migration.fill(apps, None)
