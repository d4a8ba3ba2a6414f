"""Django admin covers every model, and its pages open for an admin."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from tests.support.accounts import client_for

pytestmark = pytest.mark.django_db


def test_every_model_has_an_admin():
    missing = [m.__name__ for m in apps.get_app_config("experiments").get_models()
               if m not in admin.site._registry]
    assert missing == []


def test_admin_changelists_open(users):
    users["admin"].is_staff = users["admin"].is_superuser = True
    users["admin"].save(update_fields=["is_staff", "is_superuser"])
    client = client_for(users["admin"])
    for model in apps.get_app_config("experiments").get_models():
        url = reverse(f"admin:experiments_{model._meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url
