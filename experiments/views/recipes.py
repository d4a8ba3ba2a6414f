"""Recipe pages: the editor, presets, previews, versions and their comparison.
Materialising a version runs on a worker; these views launch the run and show its state."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from experiments.forms import (
    CompareForm,
    MaterialiseForm,
    PresetForm,
    ProblemFilterForm,
    RecipeForm,
    component_formset,
)
from experiments.models import (
    Problem,
    Recipe,
    RecipeBuildRun,
    RecipeVersion,
)
from experiments.models.recipes import component_verifies, preview
from experiments.roles import Role

from .access import require_role
from .datasets import _problem_page


def _get_recipe(pk: int) -> Recipe:
    return get_object_or_404(Recipe, pk=pk)


@require_GET
@require_role(Role.VIEWER)
def recipe_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "experiments/recipes/list.html",
        {"recipes": Recipe.objects.with_version_counts(), "preset_form": PresetForm()},
    )


def _components(formset) -> list:
    """The unsaved component instances a valid formset describes, in order."""
    kept = []
    for form in formset.forms:
        if form in formset.deleted_forms or not (form.has_changed() or form.instance.pk):
            continue
        kept.append(form.instance)
    for position, component in enumerate(kept):
        component.position = position
    return kept


def _edit(request: HttpRequest, recipe: Recipe | None) -> HttpResponse:
    instance = recipe or Recipe()
    form = RecipeForm(request.POST or None, instance=instance)
    formset = component_formset(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        with transaction.atomic():
            recipe = form.save(commit=False)
            recipe.updated_at = timezone.now()
            if recipe.pk is None:
                recipe.created_by = request.user
            recipe.save()
            components = _components(formset)
            for component in components:
                component.recipe = recipe
                component.save()
            for deleted in formset.deleted_forms:
                if deleted.instance.pk:
                    deleted.instance.delete()
        messages.success(request, "Recipe saved.")
        return redirect(recipe)
    return render(
        request,
        "experiments/recipes/form.html",
        {"recipe": recipe, "form": form, "formset": formset},
    )


@require_http_methods(["GET", "POST"])
@require_role(Role.OPERATOR)
def recipe_new(request: HttpRequest) -> HttpResponse:
    return _edit(request, None)


@require_http_methods(["GET", "POST"])
@require_role(Role.OPERATOR)
def recipe_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _edit(request, _get_recipe(pk))


@require_POST
@require_role(Role.OPERATOR)
def recipe_preview(request: HttpRequest) -> JsonResponse:
    """Live preview of the recipe being edited: counts by component, source and domain."""
    formset = component_formset(request.POST, instance=Recipe())
    if not formset.is_valid():
        # Rows the user has not touched yet are incomplete, not wrong: no "This field is
        # required" before anything was typed.
        touched = [f for f in formset.forms if f.has_changed()]
        errors = [f.errors for f in touched if f.errors] + (
            [{"__all__": formset.non_form_errors()}]
            if formset.non_form_errors() and touched else []
        )
        return JsonResponse({"ok": False, "errors": errors})
    spec = {"components": [c.spec() for c in _components(formset)]}
    return JsonResponse({"ok": True, **preview(spec)})


@require_POST
@require_role(Role.OPERATOR)
def recipe_preset(request: HttpRequest) -> HttpResponse:
    form = PresetForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Preset not created: {form.errors.as_text()}")
        return redirect("recipe_list")
    recipe, missing = Recipe.create_sky_t1(form.cleaned_data["name"], request.user)
    if missing:
        messages.warning(request, "Not filled (import these datasets): " + "; ".join(missing))
    messages.success(request, f"Created {recipe.name} from the Sky-T1 preset.")
    return redirect(recipe)


@require_GET
@require_role(Role.VIEWER)
def recipe_detail(request: HttpRequest, pk: int) -> HttpResponse:
    recipe = _get_recipe(pk)
    versions = list(recipe.versions.order_by("-number"))
    latest = versions[0] if versions else None
    components = list(recipe.components.select_related("dataset"))
    return render(
        request,
        "experiments/recipes/detail.html",
        {
            "recipe": recipe,
            "components": components,
            "unverified_components": [str(c) for c in components if not c.verify],
            "versions": versions,
            "latest": latest,
            "builds": recipe.builds.order_by("-created_at")[:5],
            "materialise_form": MaterialiseForm(),
            "compare_form": CompareForm(
                initial={"a": versions[1].number, "b": versions[0].number}
                if len(versions) > 1
                else None
            ),
        },
    )


@require_POST
@require_role(Role.OPERATOR)
def recipe_materialise(request: HttpRequest, pk: int) -> HttpResponse:
    recipe = _get_recipe(pk)
    form = MaterialiseForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors.as_text())
        return redirect(recipe)
    if form.cleaned_data["exclude_contaminated"] and not recipe.exclude_contaminated:
        recipe.exclude_contaminated = True
        recipe.updated_at = timezone.now()
        recipe.save(update_fields=["exclude_contaminated", "updated_at"])
    if not recipe.components.exists():
        messages.error(request, "Add a component before materialising.")
        return redirect(recipe)
    RecipeBuildRun.launch(
        user=request.user,
        name=f"materialise {recipe.name}",
        recipe=recipe,
        config={"recipe": recipe.pk, "spec": recipe.spec()},
    )
    messages.success(request, "Materialisation queued.")
    return redirect(recipe)


def _get_version(recipe: Recipe, number: int) -> RecipeVersion:
    try:
        return recipe.versions.get(number=number)
    except RecipeVersion.DoesNotExist:
        raise Http404("No such version.") from None


@require_GET
@require_role(Role.VIEWER)
def recipe_version(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    recipe = _get_recipe(pk)
    version = _get_version(recipe, number)
    form = ProblemFilterForm(request.GET or None)
    problems = Problem.objects.filter(pk__in=version.items.values("problem_id"))
    rows, next_after = _problem_page(problems, form)
    return render(
        request,
        "experiments/recipes/version.html",
        {
            "recipe": recipe,
            "version": version,
            # The selection's counts beside the policy frozen with each component.
            "components": [
                {**c, "verify": component_verifies(spec)}
                for c, spec in zip(version.components, version.spec.get("components") or [],
                                   strict=False)
            ],
            "problems": rows,
            "next_after": next_after,
            "chart": {
                "labels": [f"v{version.number}"],
                "source": [version.composition.get("source", {})],
                "domain": [version.composition.get("domain", {})],
            },
        },
    )


@require_GET
@require_role(Role.VIEWER)
def recipe_compare(request: HttpRequest, pk: int) -> HttpResponse:
    recipe = _get_recipe(pk)
    form = CompareForm(request.GET)
    if not form.is_valid():
        messages.error(request, "Choose two versions to compare.")
        return redirect(recipe)
    a = _get_version(recipe, form.cleaned_data["a"])
    b = _get_version(recipe, form.cleaned_data["b"])
    ids_a, ids_b = a.problem_ids(), b.problem_ids()
    added, removed = ids_b - ids_a, ids_a - ids_b
    fields = ("id", "dataset_id", "source", "domain", "prompt")
    return render(
        request,
        "experiments/recipes/compare.html",
        {
            "recipe": recipe,
            "a": a,
            "b": b,
            "form": form,
            "added_count": len(added),
            "removed_count": len(removed),
            "kept_count": len(ids_a & ids_b),
            "added": Problem.objects.filter(pk__in=sorted(added)[:100]).only(*fields),
            "removed": Problem.objects.filter(pk__in=sorted(removed)[:100]).only(*fields),
            "chart": {
                "labels": [f"v{a.number}", f"v{b.number}"],
                "source": [a.composition.get("source", {}), b.composition.get("source", {})],
                "domain": [a.composition.get("domain", {}), b.composition.get("domain", {})],
            },
        },
    )
