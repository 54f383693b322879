"""Split what became of the email (``delivery``) from whether the link still works.

``state`` mixed the two ("redeemed" next to "sent") and was written in four places; the
link's own timestamps already say whether it was used, replaced, revoked or expired.
"""

from django.db import migrations, models


def redeemed_means_sent(apps, schema_editor):
    SignInRequest = apps.get_model("signin", "SignInRequest")
    SignInRequest.objects.filter(delivery="redeemed").update(delivery="sent")


def sent_back_to_redeemed(apps, schema_editor):
    SignInRequest = apps.get_model("signin", "SignInRequest")
    SignInRequest.objects.filter(delivery="sent", consumed_at__isnull=False).update(
        delivery="redeemed")


class Migration(migrations.Migration):
    dependencies = [("signin", "0002_signinrequest_code_attempts_signinrequest_code_hmac")]

    operations = [
        migrations.RenameField("signinrequest", "state", "delivery"),
        migrations.RunPython(redeemed_means_sent, sent_back_to_redeemed),
        migrations.AlterField(
            model_name="signinrequest", name="delivery",
            field=models.CharField(choices=[
                ("pending", "Waiting for the worker"), ("sent", "Sent"),
                ("declined", "Not sent (the address may not sign in)"),
                ("undelivered", "Could not be delivered")],
                default="pending", max_length=20)),
        migrations.AlterModelOptions(
            name="externalidentity",
            options={"verbose_name": "external identity",
                     "verbose_name_plural": "external identities"}),
    ]
