from django.contrib import admin

from .models import RUN_KINDS


class RunAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "state",
        "queue",
        "failure_reason",
        "launched_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("state", "queue", "failure_reason")
    search_fields = ("name", "failure_message", "worker")
    readonly_fields = (
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "code_version",
        "package_versions",
        "celery_task_id",
        "worker",
        "worker_pid",
    )
    date_hierarchy = "created_at"


for model in RUN_KINDS.values():
    admin.site.register(model, RunAdmin)


# --- curation ---------------------------------------------------------------------------------

from .models import PriceTable, PromptVersion, Sample, TrainingSet, TrainingSetVersion  # noqa: E402


@admin.register(PromptVersion)
class PromptVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "name", "number", "created_by", "created_at")
    list_filter = ("kind",)

    def get_readonly_fields(self, request, obj=None):
        # A version a run used is frozen; new text is a new version.
        if obj is not None and obj.is_used():
            return [f.name for f in obj._meta.fields]
        return []


@admin.register(PriceTable)
class PriceTableAdmin(admin.ModelAdmin):
    list_display = ("model", "input_usd_per_mtok", "output_usd_per_mtok", "updated_at")
    search_fields = ("model",)


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "stage", "correct", "reason", "completion_tokens", "cost_usd")
    list_filter = ("stage", "correct")
    raw_id_fields = ("run", "problem", "prompt_version")
    search_fields = ("reason",)


@admin.register(TrainingSet)
class TrainingSetAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")


@admin.register(TrainingSetVersion)
class TrainingSetVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "row_count", "dataset_name", "source_run", "created_at")
    raw_id_fields = ("source_run",)


# --- evaluation ---------------------------------------------------------------------------------

from experiments.models import (  # noqa: E402
    Benchmark,
    BenchmarkResult,
    EvaluationSchedule,
    PublishedResult,
)


@admin.register(Benchmark)
class BenchmarkAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "dataset", "template", "domain", "n", "max_tokens")
    search_fields = ("name", "slug")


@admin.register(PublishedResult)
class PublishedResultAdmin(admin.ModelAdmin):
    list_display = ("model_name", "benchmark", "value", "note", "source")
    list_filter = ("benchmark", "model_name")


@admin.register(BenchmarkResult)
class BenchmarkResultAdmin(admin.ModelAdmin):
    list_display = ("benchmark", "run", "accuracy", "stderr", "n", "regression", "finished_at")
    list_filter = ("benchmark", "regression")
    raw_id_fields = ("run", "previous")


@admin.register(EvaluationSchedule)
class EvaluationScheduleAdmin(admin.ModelAdmin):
    list_display = ("name", "enabled", "hour", "minute", "tz", "last_run_at")


# --- datasets, recipes, training detail, evaluation samples ------------------------------------

from experiments.models import (  # noqa: E402
    Dataset,
    EvalSample,
    Problem,
    Recipe,
    RecipeComponent,
    RecipeItem,
    RecipeVersion,
    TrainingCheckpoint,
    TrainingMetric,
)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "layout", "problem_count", "is_benchmark", "ready", "created_at")
    list_filter = ("layout", "is_benchmark", "ready")
    search_fields = ("name", "description", "origin")


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    # Datasets hold up to millions of rows: no counting, no joins in the changelist.
    list_display = ("id", "dataset", "domain", "source", "difficulty", "external_id")
    list_filter = ("domain",)
    search_fields = ("external_id", "content_hash")
    raw_id_fields = ("dataset",)
    show_full_result_count = False
    list_select_related = ("dataset",)


class RecipeComponentInline(admin.TabularInline):
    model = RecipeComponent
    extra = 0
    raw_id_fields = ("dataset",)


@admin.register(Recipe)
class RecipeAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)
    inlines = [RecipeComponentInline]


@admin.register(RecipeComponent)
class RecipeComponentAdmin(admin.ModelAdmin):
    list_display = ("recipe", "position", "title", "dataset", "domain", "source", "verify")
    list_filter = ("verify",)
    raw_id_fields = ("recipe", "dataset")


@admin.register(RecipeVersion)
class RecipeVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "recipe", "created_at")
    raw_id_fields = ("recipe",)

    def has_change_permission(self, request, obj=None):
        return False  # versions are immutable: a change is a new version


@admin.register(RecipeItem)
class RecipeItemAdmin(admin.ModelAdmin):
    list_display = ("version", "position", "component", "problem")
    raw_id_fields = ("version", "problem")
    show_full_result_count = False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TrainingMetric)
class TrainingMetricAdmin(admin.ModelAdmin):
    list_display = ("run", "kind", "step")
    list_filter = ("kind",)
    raw_id_fields = ("run",)
    show_full_result_count = False


@admin.register(TrainingCheckpoint)
class TrainingCheckpointAdmin(admin.ModelAdmin):
    list_display = ("run", "step", "path")
    raw_id_fields = ("run",)


@admin.register(EvalSample)
class EvalSampleAdmin(admin.ModelAdmin):
    list_display = ("run", "benchmark", "problem", "sample_index")
    raw_id_fields = ("run", "benchmark", "problem")
    show_full_result_count = False


from experiments.models import AuditLog, Comment, HumanVerdict, ReviewQueue, Tag  # noqa: E402


@admin.register(ReviewQueue)
class ReviewQueueAdmin(admin.ModelAdmin):
    list_display = ("name", "run", "created_by", "created_at", "seed")
    raw_id_fields = ("run",)


@admin.register(HumanVerdict)
class HumanVerdictAdmin(admin.ModelAdmin):
    # Read-only: verdicts change through the review pages, which version and audit them.
    list_display = ("sample", "reviewer", "verdict", "current", "created_at")
    list_filter = ("verdict", "current")
    raw_id_fields = ("sample", "previous")

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ("sample", "author", "created_at")
    raw_id_fields = ("sample",)


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "target", "target_id")
    list_filter = ("action",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


admin.site.register(Tag)


# --- review queue internals ---------------------------------------------------------------------

from experiments.models import QueueItem, ReviewTask, SampleTag  # noqa: E402


@admin.register(QueueItem)
class QueueItemAdmin(admin.ModelAdmin):
    list_display = ("queue", "sample")
    raw_id_fields = ("queue", "sample")
    show_full_result_count = False


@admin.register(ReviewTask)
class ReviewTaskAdmin(admin.ModelAdmin):
    list_display = ("item", "reviewer", "state", "assigned_by")
    list_filter = ("state",)
    raw_id_fields = ("item", "reviewer", "assigned_by")


@admin.register(SampleTag)
class SampleTagAdmin(admin.ModelAdmin):
    list_display = ("sample", "tag", "added_by")
    raw_id_fields = ("sample", "added_by")


from experiments.models import TrainingNode  # noqa: E402


@admin.register(TrainingNode)
class TrainingNodeAdmin(admin.ModelAdmin):
    list_display = ("run", "rank", "state", "worker", "heartbeat_at", "exit_code")
    list_filter = ("state",)
    raw_id_fields = ("run",)
