"""Review pages: queues, the keyboard-driven item page, verdicts, comments and tags, the
side-by-side views, agreement figures, the discussion and audit pages.

Reviewers review, operators assign, viewers read; every change goes through a form and lands in
the audit log (the models do that)."""

from __future__ import annotations

import difflib
import re

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from distill.curation.render import render_markdown
from experiments.forms import AssignForm, CommentForm, ReviewQueueForm, TagForm, VerdictForm
from experiments.models import (
    AuditLog,
    Comment,
    CurationRun,
    HumanVerdict,
    QueueItem,
    ReviewQueue,
    ReviewTask,
    Sample,
    SampleTag,
)
from experiments.models.review import reviewer_agreement, stage_rows, verifier_audit
from experiments.roles import Role, role_of

from .access import require_role

# --- side by side -------------------------------------------------------------------------------

_UNIT = re.compile(r"[^\n.!?]*(?:[.!?]+\s*|\n+|$)")
_WORD = re.compile(r"\S+\s*|\s+")
_MARKERS = re.compile(r"<\|(?:begin|end)_of_(?:thought|solution)\|>")
WORD_DIFF_CELLS = 250_000  # above this a changed block is diffed with difflib's autojunk


def _units(text: str) -> list[str]:
    return [u for u in _UNIT.findall(text) if u]


def _span(tag: str, text: str) -> str:
    return f"<{tag}>{escape(text)}</{tag}>" if tag else escape(text)


def word_diff(raw: str, reformatted: str) -> dict:
    """The raw trace and the reformatted one as two escaped HTML strings, with the words only
    in the raw one in ``<del>`` and the words only in the reformatted one in ``<ins>``.

    Two levels keep long traces fast: sentences (and lines) are matched first, then words
    inside the sentences that differ; ``copied`` is the share of raw words found unchanged."""
    ua, ub = _units(raw), _units(reformatted)
    norm = lambda units: [" ".join(u.split()) for u in units]  # noqa: E731
    left, right = [], []
    same = total = 0
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(None, norm(ua), norm(ub)).get_opcodes():
        a_text, b_text = "".join(ua[a1:a2]), "".join(ub[b1:b2])
        if op == "equal":
            left.append(escape(a_text))
            right.append(escape(b_text))
            n = len(a_text.split())
            same, total = same + n, total + n
            continue
        wa, wb = _WORD.findall(a_text), _WORD.findall(b_text)
        ka, kb = [w.strip() for w in wa], [w.strip() for w in wb]
        total += sum(1 for k in ka if k)
        matcher = difflib.SequenceMatcher(None, ka, kb,
                                          autojunk=len(ka) * len(kb) > WORD_DIFF_CELLS)
        for wop, i1, i2, j1, j2 in matcher.get_opcodes():
            if wop == "equal":
                same += sum(1 for k in ka[i1:i2] if k)
                left.append(escape("".join(wa[i1:i2])))
                right.append(escape("".join(wb[j1:j2])))
            else:
                if i2 > i1:
                    left.append(_span("del", "".join(wa[i1:i2])))
                if j2 > j1:
                    right.append(_span("ins", "".join(wb[j1:j2])))
    return {"left": mark_safe("".join(left)), "right": mark_safe("".join(right)),
            "copied": same / total if total else None, "raw_words": total}


def reformatted_body(text: str) -> str:
    """The reformatted text without its section markers (what should match the raw trace)."""
    return _MARKERS.sub("", text or "")


# --- helpers ------------------------------------------------------------------------------------


def _get_queue(pk: int) -> ReviewQueue:
    return get_object_or_404(ReviewQueue.objects.select_related("run", "created_by"), pk=pk)


def _get_sample(pk: int) -> Sample:
    """A sample by its anchor (generate) row."""
    return get_object_or_404(Sample.objects.select_related("run", "problem__dataset"),
                             pk=pk, stage="generate")


def _can_review(user) -> bool:
    role = role_of(user)
    return role is not None and role >= Role.REVIEWER


def _sample_context(request: HttpRequest, sample: Sample) -> dict:
    """What the item page and the sample page show: every stage's row, the raw and the
    reformatted trace (rendered through the sanitiser), verdicts, comments and tags."""
    rows = stage_rows(sample)
    ref = rows.get("reformat")
    raw_html = render_markdown(sample.text) if sample.text else None
    ref_html = render_markdown(ref.text) if ref and ref.text else None
    verdicts = list(sample.human_verdicts.select_related("reviewer").order_by("-created_at",
                                                                              "-id"))
    mine = next((v for v in verdicts if v.current and v.reviewer_id == request.user.pk), None)
    return {
        "sample": sample, "run": sample.run, "problem": sample.problem,
        "rows": [rows[s] for s in ("generate", "verify", "reformat", "reverify") if s in rows],
        "prompt_html": render_markdown(sample.problem.prompt),
        "raw_html": raw_html, "ref_html": ref_html,
        "verdicts": verdicts, "current_verdicts": [v for v in verdicts if v.current],
        "mine": mine,
        "verdict_form": VerdictForm(initial={"verdict": mine.verdict, "note": mine.note}
                                    if mine else None),
        "comments": Comment.objects.filter(sample=sample).select_related("author")
        .prefetch_related("mentions"),
        "tags": SampleTag.objects.filter(sample=sample).select_related("tag", "added_by"),
        "comment_form": CommentForm(), "tag_form": TagForm(),
        "can_review": _can_review(request.user),
        "verdict_choices": HumanVerdict.Verdict.choices,
        "siblings": Sample.objects.filter(run=sample.run, problem=sample.problem,
                                          stage="generate").exclude(pk=sample.pk)
        .values_list("pk", "sample_index"),
    }


# --- queues -------------------------------------------------------------------------------------


@require_GET
@require_role(Role.VIEWER)
def review_home(request: HttpRequest) -> HttpResponse:
    queues = ReviewQueue.objects.select_related("run", "created_by")[:100]
    mine = ReviewTask.objects.filter(reviewer=request.user).values(
        "item__queue", "state").order_by()
    progress: dict[int, dict[str, int]] = {}
    for row in mine:
        p = progress.setdefault(row["item__queue"], {"total": 0, "done": 0, "skipped": 0})
        p["total"] += 1
        if row["state"] != ReviewTask.State.PENDING:
            p[row["state"]] += 1
    initial = {"run": request.GET.get("run")} if request.GET.get("run") else None
    return render(request, "experiments/review/home.html", {
        "queues": [(q, progress.get(q.pk)) for q in queues],
        "form": ReviewQueueForm(initial=initial),
        "can_review": _can_review(request.user),
        "mentions": Comment.objects.mentioning(request.user).recent(10),
    })


@require_POST
@require_role(Role.REVIEWER)
def review_queue_new(request: HttpRequest) -> HttpResponse:
    form = ReviewQueueForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"No queue made: {form.errors.as_text()}")
        return redirect("review_home")
    queue = form.save(request.user)
    # The reviewer who builds a queue works through it; an operator can deal it out later.
    queue.assign([request.user], overlap=1, by=request.user)
    messages.success(request, f"Queue of {queue.items.count()} samples made.")
    return redirect(queue)


@require_GET
@require_role(Role.VIEWER)
def review_queue(request: HttpRequest, pk: int) -> HttpResponse:
    queue = _get_queue(pk)
    progress = queue.progress()
    is_operator = role_of(request.user) >= Role.OPERATOR
    items = queue.items.select_related("sample__problem").order_by("position")[:500]
    return render(request, "experiments/review/queue.html", {
        "queue": queue, "items": items, "total": queue.items.count(),
        "progress": progress if is_operator else
        [p for p in progress if p["reviewer"] == request.user.get_username()],
        "is_operator": is_operator, "assign_form": AssignForm() if is_operator else None,
        "can_review": _can_review(request.user),
    })


@require_POST
@require_role(Role.OPERATOR)
def review_queue_assign(request: HttpRequest, pk: int) -> HttpResponse:
    queue = _get_queue(pk)
    form = AssignForm(request.POST)
    if form.is_valid():
        created = queue.assign(list(form.cleaned_data["reviewers"]),
                               overlap=form.cleaned_data["overlap"], by=request.user)
        messages.success(request, f"Assigned {created} new review tasks.")
    else:
        messages.error(request, f"Not assigned: {form.errors.as_text()}")
    return redirect(queue)


@require_GET
@require_role(Role.REVIEWER)
def review_work(request: HttpRequest, pk: int) -> HttpResponse:
    """Where "start reviewing" goes: the reviewer's first pending item."""
    queue = _get_queue(pk)
    position = queue.next_pending(request.user)
    if position is None:
        messages.info(request, "Nothing left for you in this queue.")
        return redirect(queue)
    return redirect("review_item", pk=queue.pk, position=position)


@require_GET
@require_role(Role.VIEWER)
def review_item(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    queue = _get_queue(pk)
    item = get_object_or_404(QueueItem.objects.select_related("sample"), queue=queue,
                             position=position)
    sample = _get_sample(item.sample_id)
    prev, nxt = queue.neighbours(position, request.user)
    task = ReviewTask.objects.filter(item=item, reviewer=request.user).first()
    mine = ReviewTask.objects.filter(item__queue=queue, reviewer=request.user)
    return render(request, "experiments/review/item.html", {
        **_sample_context(request, sample),
        "queue": queue, "item": item, "task": task, "prev": prev, "next": nxt,
        "my_done": mine.exclude(state=ReviewTask.State.PENDING).count(),
        "my_total": mine.count(), "total": queue.items.count(),
    })


@require_POST
@require_role(Role.REVIEWER)
def review_item_verdict(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    queue = _get_queue(pk)
    item = get_object_or_404(QueueItem, queue=queue, position=position)
    form = VerdictForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not saved: {form.errors.as_text()}")
        return redirect("review_item", pk=pk, position=position)
    HumanVerdict.give(item.sample, request.user, form.cleaned_data["verdict"],
                      form.cleaned_data.get("note") or "", queue=queue)
    return _after_action(request, queue, position)


@require_POST
@require_role(Role.REVIEWER)
def review_item_skip(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    queue = _get_queue(pk)
    item = get_object_or_404(QueueItem.objects.select_related("sample"), queue=queue,
                             position=position)
    ReviewTask.mark(item.sample, request.user, ReviewTask.State.SKIPPED, queue)
    return _after_action(request, queue, position)


def _after_action(request: HttpRequest, queue: ReviewQueue, position: int) -> HttpResponse:
    nxt = queue.next_pending(request.user, after=position)
    if nxt is None:
        messages.success(request, "You have finished this queue.")
        return redirect(queue)
    return redirect("review_item", pk=queue.pk, position=nxt)


# --- samples ------------------------------------------------------------------------------------


@require_GET
@require_role(Role.VIEWER)
def review_sample(request: HttpRequest, sample: int) -> HttpResponse:
    return render(request, "experiments/review/item.html",
                  _sample_context(request, _get_sample(sample)))


@require_POST
@require_role(Role.REVIEWER)
def review_sample_verdict(request: HttpRequest, sample: int) -> HttpResponse:
    s = _get_sample(sample)
    form = VerdictForm(request.POST)
    if form.is_valid():
        HumanVerdict.give(s, request.user, form.cleaned_data["verdict"],
                          form.cleaned_data.get("note") or "")
        messages.success(request, "Verdict saved.")
    else:
        messages.error(request, f"Not saved: {form.errors.as_text()}")
    return redirect("review_sample", sample=s.pk)


def _back(request: HttpRequest, sample: Sample) -> HttpResponse:
    # Back to the queue item the form was on, when it says so and it exists.
    queue, position = request.POST.get("queue", ""), request.POST.get("position", "")
    if queue.isdigit() and position.isdigit() and QueueItem.objects.filter(
            queue_id=queue, position=position, sample=sample).exists():
        return redirect(reverse("review_item", args=[int(queue), int(position)]))
    return redirect("review_sample", sample=sample.pk)


@require_POST
@require_role(Role.REVIEWER)
def review_comment(request: HttpRequest, sample: int) -> HttpResponse:
    s = _get_sample(sample)
    form = CommentForm(request.POST)
    if form.is_valid():
        Comment.post(s, request.user, form.cleaned_data["body"])
    else:
        messages.error(request, f"Not posted: {form.errors.as_text()}")
    return _back(request, s)


@require_POST
@require_role(Role.REVIEWER)
def review_tag(request: HttpRequest, sample: int) -> HttpResponse:
    s = _get_sample(sample)
    form = TagForm(request.POST)
    if form.is_valid():
        if form.cleaned_data.get("remove"):
            SampleTag.remove(s, form.cleaned_data["name"], request.user)
        else:
            SampleTag.add(s, form.cleaned_data["name"], request.user)
    else:
        messages.error(request, f"Tag not saved: {form.errors.as_text()}")
    return _back(request, s)


@require_GET
@require_role(Role.VIEWER)
def review_diff(request: HttpRequest, sample: int) -> HttpResponse:
    """The raw teacher trace beside the reformatted one, differences highlighted."""
    s = _get_sample(sample)
    ref = stage_rows(s).get("reformat")
    if ref is None or not ref.text:
        raise Http404("This run did not reformat." if not s.run.reformats else
                      "This sample was not reformatted.")
    return render(request, "experiments/review/diff.html", {
        "sample": s, "run": s.run, "problem": s.problem,
        "diff": word_diff(s.text, reformatted_body(ref.text))})


@require_GET
@require_role(Role.VIEWER)
def review_pair(request: HttpRequest, run: int, problem: int) -> HttpResponse:
    """Two samples of one problem side by side (``?a=`` and ``?b=`` sample indexes)."""
    curation = get_object_or_404(CurationRun, pk=run)
    gens = {s.sample_index: s for s in Sample.objects.filter(
        run=curation, problem_id=problem, stage="generate").select_related("problem")}
    if not gens:
        raise Http404("No samples of this problem in this run.")
    indexes = sorted(gens)

    def pick(name: str, default: int) -> int:
        v = request.GET.get(name, "")
        return int(v) if v.isdigit() and int(v) in gens else default

    a = pick("a", indexes[0])
    b = pick("b", next((i for i in indexes if i != a), a))
    sides = []
    for idx in (a, b):
        s = gens[idx]
        rows = stage_rows(s)
        sides.append({"sample": s, "rows": [rows[k] for k in ("verify", "reverify") if k in rows],
                      "html": render_markdown(s.text) if s.text else None,
                      "verdicts": s.human_verdicts.current().select_related("reviewer")})
    return render(request, "experiments/review/pair.html", {
        "run": curation, "problem": gens[a].problem, "sides": sides, "indexes": indexes,
        "a": a, "b": b})


# --- figures and logs ---------------------------------------------------------------------------


@require_GET
@require_role(Role.VIEWER)
def review_agreement(request: HttpRequest) -> HttpResponse:
    runs = CurationRun.objects.filter(samples__human_verdicts__isnull=False).distinct().order_by(
        "-created_at")
    pk = request.GET.get("run", "")
    run = runs.filter(pk=pk).first() if pk.isdigit() else runs.first()
    return render(request, "experiments/review/agreement.html", {
        "runs": runs[:100], "run": run,
        "audit": verifier_audit(run) if run else None,
        "reviewers": reviewer_agreement(run) if run else None,
    })


@require_GET
@require_role(Role.VIEWER)
def review_discussion(request: HttpRequest) -> HttpResponse:
    return render(request, "experiments/review/discussion.html", {
        "comments": Comment.objects.prefetch_related("mentions").recent(100),
        "mentions": Comment.objects.mentioning(request.user).prefetch_related("mentions")
        .recent(20),
        "tags": SampleTag.objects.select_related("tag", "added_by", "sample__problem")
        .order_by("-added_at")[:50],
    })


@require_GET
@require_role(Role.VIEWER)
def review_audit(request: HttpRequest) -> HttpResponse:
    return render(request, "experiments/review/audit.html",
                  {"entries": AuditLog.objects.recent(200)})
