"""Approval from another device (rule 11): the number, its tries, approved and refused."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('signin', '0004_link_seed'),
    ]

    operations = [
        migrations.AddField(
            model_name='signinrequest',
            name='approval_attempts',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='signinrequest',
            name='approval_number',
            field=models.CharField(blank=True, max_length=2),
        ),
        migrations.AddField(
            model_name='signinrequest',
            name='approved_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='signinrequest',
            name='approved_ip',
            field=models.GenericIPAddressField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='signinrequest',
            name='approved_user_agent',
            field=models.CharField(blank=True, max_length=400),
        ),
        migrations.AddField(
            model_name='signinrequest',
            name='refusal',
            field=models.CharField(blank=True, choices=[('not_me', '"This wasn\'t me" on the device that opened the link'), ('wrong_numbers', 'Too many wrong approval numbers')], max_length=20),
        ),
        migrations.AddField(
            model_name='signinrequest',
            name='refused_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
