import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from experiments.roles import Role, role_of
from tests.support.accounts import client_for

pytestmark = pytest.mark.django_db


def test_grant_role_promotes_and_demotes():
    call_command("grant_role", "alice", "admin", "--create", "--password", "x" * 12)
    alice = User.objects.get(username="alice")
    assert role_of(alice) == Role.ADMIN and alice.is_staff
    assert client_for(alice).get("/admin/").status_code == 200

    call_command("grant_role", "alice", "viewer")
    alice = User.objects.get(username="alice")
    assert role_of(alice) == Role.VIEWER and not alice.is_staff and not alice.is_superuser
    assert client_for(alice).get("/admin/").status_code == 302  # back to the admin login


def test_grant_role_to_unknown_user_is_a_clear_error():
    with pytest.raises(CommandError, match="no user 'bob'"):
        call_command("grant_role", "bob", "viewer")


def test_highest_role_wins(users):
    user = users["reviewer"]
    user.groups.add(*users["operator"].groups.all())
    assert role_of(User.objects.get(pk=user.pk)) == Role.OPERATOR


def test_grant_role_sets_the_password_of_an_existing_user():
    call_command("grant_role", "carol", "operator", "--create", "--password", "first-pass-1")
    call_command("grant_role", "carol", "admin", "--password", "second-pass-2")
    carol = User.objects.get(username="carol")
    assert carol.check_password("second-pass-2") and not carol.check_password("first-pass-1")
    assert role_of(carol) == Role.ADMIN
    # Without --password the password stays as it was.
    call_command("grant_role", "carol", "viewer")
    assert User.objects.get(username="carol").check_password("second-pass-2")


def test_grant_role_refuses_to_create_an_account_nobody_can_log_in_to():
    with pytest.raises(CommandError, match="give --password"):
        call_command("grant_role", "dave", "admin", "--create")
    assert not User.objects.filter(username="dave").exists()
