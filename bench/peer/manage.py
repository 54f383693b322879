"""The peer's commands: Django's (``migrate``), and ``seed N``: N people who may sign in."""

from __future__ import annotations

import os
import sys


def seed(count: int) -> None:
    from allauth.account.models import EmailAddress
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User

    unusable = make_password(None)
    users = [User(username=f"p{n}@peer.example", email=f"p{n}@peer.example",
                  password=unusable) for n in range(count)]
    User.objects.bulk_create(users, batch_size=2000)
    ids = dict(User.objects.values_list("email", "id"))
    EmailAddress.objects.bulk_create(
        [EmailAddress(user_id=ids[u.email], email=u.email, verified=True, primary=True)
         for u in users], batch_size=2000)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer_settings")
    import django

    django.setup()
    if sys.argv[1:2] == ["seed"]:
        seed(min(int(sys.argv[2]), 200_000))
    else:
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
