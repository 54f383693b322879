"""Strict mode: an organization's email links sign in only the browser that asked."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_one_organization_per_person_and_session_epoch")]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="strict_same_browser",
            field=models.BooleanField(
                default=False,
                help_text="A link opened on another device can approve the sign-in (with the number shown on the screen that asked) or refuse it, but never signs that other device in.",
                verbose_name="email links sign in only the browser that asked"),
        ),
    ]
