# Training nodes share the run lifecycle (experiments.models.runs.Lifecycle): a nullable cancel
# flag is added and ``state`` gets the index every lifecycle row has (the reaper filters on it).
# Both keep every row as it is: the new column is NULL (no cancel asked) on existing nodes.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0012_recipe_component_verify'),
    ]

    operations = [
        migrations.AddField(
            model_name='trainingnode',
            name='cancel_requested_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='trainingnode',
            name='state',
            field=models.CharField(choices=[('queued', 'queued'), ('running', 'running'), ('succeeded', 'succeeded'), ('failed', 'failed'), ('cancelled', 'cancelled')], db_index=True, default='queued', max_length=16),
        ),
    ]
