# The deliveries' own index on alarm_id goes: "delivery_counts" (alarm_id, channel, state) begins with
# it and serves every lookup by alarm. One index less to update for each of an alarm's rows. Plain
# DROP INDEX on both databases (an AlterField would make Django's SQLite backend copy the whole table).

import django.db.models.deletion
from django.db import migrations, models

INDEX = "notify_delivery_alarm_id_5ab3e30d"


class Migration(migrations.Migration):

    dependencies = [
        ('alarms', '0004_alarm_index_covered_by_composites'),
        ('notify', '0004_delivery_keys_in_time_order'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='delivery',
                    name='alarm',
                    field=models.ForeignKey(db_constraint=False, db_index=False,
                                            on_delete=django.db.models.deletion.CASCADE,
                                            related_name='deliveries', to='alarms.alarm'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(f'DROP INDEX IF EXISTS "{INDEX}"',
                                  reverse_sql=f'CREATE INDEX "{INDEX}" ON "notify_delivery" ("alarm_id")'),
            ],
        ),
    ]
