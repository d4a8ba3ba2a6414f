"""Give a user a role (creating the user if asked): `manage.py grant_role alice operator`."""

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError

from experiments.roles import GROUP_NAMES


class Command(BaseCommand):
    help = "Set a user's role: viewer, reviewer, operator or admin (admins also get Django admin)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=list(GROUP_NAMES.values()))
        parser.add_argument("--create", action="store_true", help="create the user if missing")
        parser.add_argument(
            "--password", help="set this password (required with --create for a new user)"
        )

    def handle(self, *args, username: str, role: str, create: bool, password: str | None, **kw):
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            if not create:
                raise CommandError(f"no user {username!r} (use --create to make one)") from None
            if not password:
                # create_user without a password makes an account nobody can log in to.
                raise CommandError(
                    f"no user {username!r}: give --password to create one that can log in"
                ) from None
            user = User.objects.create_user(username=username, password=password)
        else:
            if password:
                user.set_password(password)
                user.save(update_fields=["password"])
        # One role at a time: roles are ordered, so the highest group would win anyway, and a
        # demotion must actually take the higher role away.
        user.groups.remove(*Group.objects.filter(name__in=GROUP_NAMES.values()))
        user.groups.add(Group.objects.get(name=role))
        is_admin = role == "admin"
        user.is_staff = user.is_superuser = is_admin
        user.save(update_fields=["is_staff", "is_superuser"])
        self.stdout.write(f"{username}: {role}" + (" (password set)" if password else ""))
