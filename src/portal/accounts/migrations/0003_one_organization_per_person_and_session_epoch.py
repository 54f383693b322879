import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_one_membership_per_person'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='membership',
            name='membership_unique',
        ),
        migrations.AlterField(
            model_name='membership',
            name='user',
            field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='membership', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='user',
            name='session_epoch',
            field=models.PositiveIntegerField(default=0, editable=False, help_text='Changes whenever access is taken away; older sessions stop working.'),
        ),
        migrations.AlterField(
            model_name='organization',
            name='is_active',
            field=models.BooleanField(default=True, help_text='Turning an organization off signs every member out at once and stops every sign-in method for them.'),
        ),
    ]
