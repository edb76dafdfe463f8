# The default of Delivery.key is a Python function; the database keeps no default, so nothing changes
# in it. (A plain AlterField would make Django's SQLite backend copy the whole table.)

import rallypoint.notify.models
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('notify', '0003_delivery_checks_only_the_recipient'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='delivery',
                    name='key',
                    field=models.UUIDField(default=rallypoint.notify.models.time_ordered_key, editable=False,
                                           unique=True),
                ),
            ],
            database_operations=[],
        ),
    ]
