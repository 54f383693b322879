from typing import Any

from django.core.management import call_command
from django.db import migrations, models


def create_cache_table(apps: Any, schema_editor: Any) -> None:
    # The database cache (used when REDIS_URL is unset) needs its table; creating it here
    # means `migrate` alone prepares a fresh database, in tests too.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="RateLimitCounter",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=200, unique=True)),
                ("count", models.PositiveIntegerField(default=0)),
                ("expires_at", models.DateTimeField(db_index=True)),
            ],
        ),
        migrations.RunPython(create_cache_table, migrations.RunPython.noop),
    ]
