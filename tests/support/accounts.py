"""Users with a role, and a test client logged in as one."""

from __future__ import annotations

from django.contrib.auth.models import Group, User
from django.test import Client

ROLE_NAMES = ("viewer", "reviewer", "operator", "admin")


def make_user(username: str, role: str | None = None, password: str = "pw-for-tests") -> User:
    user = User.objects.create_user(username=username, password=password)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def client_for(user: User | None, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    if user is not None:
        client.force_login(user)
    return client
