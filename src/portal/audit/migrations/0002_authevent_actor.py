import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='authevent',
            name='actor',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='audited_actions', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='authevent',
            name='actor_email',
            field=models.CharField(blank=True, db_index=True, max_length=254),
        ),
    ]
