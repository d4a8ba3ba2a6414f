"""skyboard settings: one module, every knob read from the environment.

Embedded defaults (SQLite + Celery's filesystem broker under ``var/``) let a laptop run the
whole product with no services; production and CI point ``DATABASE_URL`` at PostgreSQL and
``CELERY_BROKER_URL`` at Redis.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


VAR_DIR = Path(env("SKYBOARD_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY", "dev-only-insecure-key-change-me")
ALLOWED_HOSTS = [h for h in env("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "experiments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "skyboard.urls"
WSGI_APPLICATION = "skyboard.wsgi.application"
ASGI_APPLICATION = "skyboard.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "experiments.context_processors.roles",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'skyboard.sqlite3'}"),
        conn_max_age=int(env("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A web server, a worker and beat share the file: wait for locks instead of failing, and
    # WAL so readers never block the writer.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory: integration tests start real worker processes that must see it.
    # One per test process, so two test runs on one checkout don't delete each other's.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-skyboard-{os.getpid()}.sqlite3")}
elif env("SKYBOARD_TEST_DB_PER_PROCESS", "1") == "1":
    # Two test runs against one server (developers, CI) must not drop each other's database.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Problem-table text search: the most rows one request reads in id order before it answers
# with the matches found so far and a "Search further" link (docs/datasets.md, Performance).
PROBLEM_SEARCH_SCAN_ROWS = int(env("PROBLEM_SEARCH_SCAN_ROWS", "2000"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# Vendored assets live in static/vendor/ (no CDN: users run skyboard behind firewalls).
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
# In development and tests whitenoise serves straight from the finders; production runs
# collectstatic into STATIC_ROOT.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# The demo (scripts/demo.sh) and the Docker image serve what collectstatic wrote with
# SKYBOARD_STATIC_MANIFEST=1: content-hashed names cached for a year ("immutable"), gzip
# copies (and brotli ones where the brotli module is installed) sent to browsers that accept
# them. Without it (tests, a bare `manage.py runserver`) the plain storage serves the files
# under their own names, so nothing has to be collected first.
STATIC_MANIFEST = env_bool("SKYBOARD_STATIC_MANIFEST", False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "skyboard.staticfiles.CompressedManifestStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Uploaded datasets, exports, training run directories.
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
RUNS_DIR = Path(env("SKYBOARD_RUNS_DIR", str(VAR_DIR / "runs")))
# Not under VAR_DIR: converted models are large and slow to make, and the test suite (which
# uses its own VAR_DIR) shares them with the demo.
MODELS_DIR = Path(env("SKYBOARD_MODELS_DIR", str(BASE_DIR / "var" / "models")))

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Celery -----------------------------------------------------------------------------------

BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "in"),
        "data_folder_out": str(BROKER_DIR / "in"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Broadcasts (revoke, ping) are files too; the default is relative to the cwd.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # The default 1 s poll makes every task start up to a second late.
        "polling_interval": 0.05,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than the longest job (a training run may hold its message for days when
        # acks_late is on): otherwise Redis redelivers a running task to a second worker.
        "visibility_timeout": int(env("CELERY_VISIBILITY_TIMEOUT", str(8 * 24 * 3600))),
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_SOFT_TIME_LIMIT = int(env("CELERY_TASK_SOFT_TIME_LIMIT", "3300"))
CELERY_TASK_TIME_LIMIT = int(env("CELERY_TASK_TIME_LIMIT", "3600"))
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Seconds between heartbeats of a running job, and how long without one before the reaper
# declares its worker lost.
RUN_HEARTBEAT_SECONDS = env_float("RUN_HEARTBEAT_SECONDS", 10.0)
RUN_STALE_AFTER_SECONDS = env_float("RUN_STALE_AFTER_SECONDS", 120.0)
REAPER_INTERVAL_SECONDS = env_float("REAPER_INTERVAL_SECONDS", 30.0)

# --- Workers' environments and outside services ------------------------------------------------

# vLLM and LLaMA-Factory pin incompatible transformers: each lives in its own virtualenv.
TRAINING_VENV = Path(env("SKYBOARD_TRAINING_VENV", str(BASE_DIR / ".venv-train")))
GENERATION_VENV = Path(env("SKYBOARD_GENERATION_VENV", str(BASE_DIR / ".venv-vllm")))
DEMO_MODEL_DIR = Path(env("SKYBOARD_DEMO_MODEL", str(MODELS_DIR / "smollm2-135m-instruct")))

OPENAI_API_KEY = env("OPENAI_API_KEY")
OPENAI_BASE_URL = env("OPENAI_BASE_URL", "https://api.openai.com/v1")
OPENAI_MODEL = env("OPENAI_MODEL", "gpt-4o-mini")

WANDB_API_KEY = env("WANDB_API_KEY")
WANDB_PROJECT = env("WANDB_PROJECT", "skyboard")
WANDB_ENTITY = env("WANDB_ENTITY")
WANDB_MODE = env("WANDB_MODE", "offline")

GPU_HOUR_PRICE_USD = env_float("GPU_HOUR_PRICE_USD", 2.0)

# Multi-node training: the address other nodes reach node 0's worker at (empty: this host's IP
# as its FQDN resolves), its port (0: a free one), and how long a node waits for the others.
TRAINING_MASTER_ADDR = env("TRAINING_MASTER_ADDR")
TRAINING_MASTER_PORT = int(env("TRAINING_MASTER_PORT", "0"))
TRAINING_NODE_WAIT_SECONDS = env_float("TRAINING_NODE_WAIT_SECONDS", 900.0)
TRAINING_NODE_SETTLE_SECONDS = env_float("TRAINING_NODE_SETTLE_SECONDS", 60.0)

# Concurrent sandboxes a verification task may run.
VERIFY_SANDBOXES = int(env("VERIFY_SANDBOXES", str(os.cpu_count() or 2)))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # The HTTP clients log a line per request at INFO: at hundreds of requests a second that
    # is noise in the worker log and CPU taken from the requests themselves.
    "loggers": {name: {"level": "WARNING"} for name in (
        "django.db.backends", "httpx", "httpx2", "httpcore", "openai")},
}
