from django.apps import AppConfig
from django.db.models.signals import post_migrate

from .roles import GROUP_NAMES


def create_role_groups(sender, using="default", **kwargs) -> None:
    """The role groups exist whenever the schema does: after migrate, and after a test flush
    (which empties every table and then sends post_migrate, like content types)."""
    # Not at module level: apps.py is imported before any models module is ready.
    from django.contrib.auth.models import Group

    for name in GROUP_NAMES.values():
        Group.objects.using(using).get_or_create(name=name)


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "skyboard"

    def ready(self) -> None:
        post_migrate.connect(create_role_groups, sender=self)
