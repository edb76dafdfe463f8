# The recipient rows' own index on alarm_id goes: the unique (alarm_id, membership_id) and the
# (alarm_id, answer) index begin with it and serve every lookup by alarm. One index less to update for
# each of an alarm's rows. Plain DROP INDEX on both databases (an AlterField would make Django's SQLite
# backend copy the whole table, and on PostgreSQL it dropped nothing).

import django.db.models.deletion
from django.db import migrations, models

INDEX = "alarms_alarmrecipient_alarm_id_b51fedc4"


class Migration(migrations.Migration):

    dependencies = [
        ('alarms', '0003_recipient_checks_the_alarm_not_the_site'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='alarmrecipient',
                    name='alarm',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name='recipients', to='alarms.alarm'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(f'DROP INDEX IF EXISTS "{INDEX}"',
                                  reverse_sql=f'CREATE INDEX "{INDEX}" ON "alarms_alarmrecipient" ("alarm_id")'),
            ],
        ),
    ]
