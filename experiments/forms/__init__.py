"""Forms, one module per domain (as models and views are): they validate and return cleaned
data; launching a run is the model's verb (``Run.launch``), called by the view."""

from .core import ConfirmForm, DiagnosticForm, FieldsetsMixin
from .curation import (
    CurationRerunForm,
    CurationRunForm,
    PriceForm,
    PromptVersionForm,
    SampleFilterForm,
)
from .datasets import DatasetImportForm, ProblemFilterForm
from .evaluation import EvaluationForm, EvaluationScheduleForm
from .recipes import (
    CompareForm,
    MaterialiseForm,
    PresetForm,
    RecipeComponentForm,
    RecipeForm,
    component_formset,
)
from .review import AssignForm, CommentForm, ReviewQueueForm, TagForm, VerdictForm
from .training import TrainingCompareForm, TrainingRunForm

__all__ = [
    "AssignForm", "CommentForm", "CompareForm", "ConfirmForm", "CurationRerunForm",
    "CurationRunForm", "DatasetImportForm", "DiagnosticForm", "EvaluationForm",
    "EvaluationScheduleForm", "FieldsetsMixin", "MaterialiseForm", "PresetForm", "PriceForm",
    "ProblemFilterForm", "PromptVersionForm", "RecipeComponentForm", "RecipeForm",
    "ReviewQueueForm", "SampleFilterForm", "TagForm", "TrainingCompareForm", "TrainingRunForm",
    "VerdictForm", "component_formset",
]
