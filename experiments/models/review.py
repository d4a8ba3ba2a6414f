"""Team review of curation samples: queues built from a filter, assignment with overlap,
human verdicts that override the verifier in the export, comments and tags, agreement
figures, and an audit log of every change.

What a "sample" is here: one (run, problem, sample index), anchored on its ``generate`` row
(the teacher's trace, the one row every sample has). Queue items, verdicts, comments and tags
all point at that row; the other stages' rows are looked up by the same key.

Human verdicts are append-only. Giving a new verdict closes the reviewer's current one (a
conditional UPDATE on ``current=True`` whose row count is checked) and inserts the next with a
link to the one it replaced, so "who said what, when, and what it was before" is the chain of
rows; an ``AuditLog`` row records the same change for the cross-cutting audit page.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import combinations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from experiments.roles import role_of

from .curation import Sample, Stage

# --- audit log ----------------------------------------------------------------------------------


class AuditLogQuerySet(models.QuerySet):
    def about(self, obj: models.Model):
        return self.filter(target=obj._meta.label_lower, target_id=obj.pk)

    def recent(self, limit: int = 100):
        return self.select_related("actor").order_by("-at", "-id")[:limit]


class AuditLog(models.Model):
    """Who did what to which row, when, with the values before and after."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                              related_name="+")
    at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=40)
    target = models.CharField(max_length=100)  # app_label.model
    target_id = models.PositiveBigIntegerField()
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # A row's history: WHERE target=? AND target_id=? ORDER BY at.
            models.Index(fields=["target", "target_id", "at"], name="audit_target"),
            # The audit page: ORDER BY at DESC LIMIT n.
            models.Index(fields=["-at"], name="audit_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target}#{self.target_id}"

    @classmethod
    def record(cls, actor, action: str, obj: models.Model, before=None, after=None) -> AuditLog:
        return cls.objects.create(actor=actor, action=action, target=obj._meta.label_lower,
                                  target_id=obj.pk, before=before, after=after)


# --- helpers ------------------------------------------------------------------------------------


def anchor_rows(run, keys: Iterable[tuple[int, int]] | None = None):
    """The generate rows of ``run`` (every sample has one), optionally for some keys only."""
    qs = Sample.objects.filter(run=run, stage=Stage.GENERATE)
    if keys is not None:
        keys = list(keys)
        if not keys:
            return qs.none()
        q = Q()
        by_problem: dict[int, set[int]] = defaultdict(set)
        for pid, idx in keys:
            by_problem[pid].add(idx)
        for pid, idxs in by_problem.items():
            q |= Q(problem_id=pid, sample_index__in=idxs)
        qs = qs.filter(q)
    return qs


def stage_rows(sample: Sample) -> dict[str, Sample]:
    """Every stage's row of the sample ``sample`` anchors."""
    return {s.stage: s for s in Sample.objects.filter(
        run_id=sample.run_id, problem_id=sample.problem_id, sample_index=sample.sample_index)}


# --- queues and assignment ---------------------------------------------------------------------


class ReviewQueue(models.Model):
    """A fixed list of samples chosen by a filter (and optionally a seeded random draw)."""

    name = models.CharField(max_length=200)
    run = models.ForeignKey("experiments.CurationRun", on_delete=models.CASCADE,
                            related_name="review_queues")
    # {"stage", "verdict", "reason", "source", "sample_n"}: what built it, shown on its page.
    filters = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"queue {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("review_queue", args=[self.pk])

    @classmethod
    def build(cls, run, *, user, name: str = "", stage: str = "", verdict: str = "",
              reason: str = "", source: str = "", sample_n: int | None = None,
              seed: int | None = None) -> ReviewQueue:
        """A queue over the samples of ``run`` whose ``stage`` row matches the filter; with
        ``sample_n`` a random draw of that many (the seed is recorded, so it can be redrawn)."""
        matching = Sample.objects.filter(run=run).browse(
            stage=stage, verdict=verdict, reason=reason, source=source)
        keys = set(matching.values_list("problem_id", "sample_index"))
        ids = sorted(pk for pk, pid, idx in anchor_rows(run).values_list(
            "id", "problem_id", "sample_index") if (pid, idx) in keys)
        if sample_n:
            if seed is None:
                seed = random.SystemRandom().randrange(2**31)
            ids = sorted(random.Random(seed).sample(ids, min(sample_n, len(ids))))
        filters = {k: v for k, v in {"stage": stage, "verdict": verdict, "reason": reason,
                                     "source": source, "sample_n": sample_n}.items() if v}
        with transaction.atomic():
            queue = cls.objects.create(name=name or f"run {run.pk} review", run=run,
                                       filters=filters, seed=seed if sample_n else None,
                                       created_by=user)
            QueueItem.objects.bulk_create(
                [QueueItem(queue=queue, sample_id=pk, position=i) for i, pk in enumerate(ids)],
                batch_size=1000)
            AuditLog.record(user, "queue.create", queue, None,
                            {"run": run.pk, "filters": filters, "seed": queue.seed,
                             "items": len(ids)})
        return queue

    def assign(self, reviewers: list, *, overlap: int = 1, by) -> int:
        """Deal every item to ``overlap`` of ``reviewers`` round-robin (item i goes to reviewers
        i·k … i·k+k-1, modulo their number, so loads differ by at most one). Assigning again
        adds what is missing and never touches work already done. Returns tasks created."""
        reviewers = sorted(reviewers, key=lambda u: u.pk)
        if not reviewers or not 1 <= overlap <= len(reviewers):
            raise ValueError("overlap must be between 1 and the number of reviewers")
        items = list(self.items.order_by("position").values_list("id", flat=True))
        r = len(reviewers)
        tasks = [ReviewTask(item_id=item, reviewer=reviewers[(i * overlap + j) % r],
                            assigned_by=by)
                 for i, item in enumerate(items) for j in range(overlap)]
        before = self.tasks().count()
        with transaction.atomic():
            ReviewTask.objects.bulk_create(tasks, ignore_conflicts=True, batch_size=1000)
            created = self.tasks().count() - before
            AuditLog.record(by, "queue.assign", self, {"tasks": before},
                            {"tasks": before + created, "overlap": overlap,
                             "reviewers": [u.get_username() for u in reviewers]})
        return created

    def tasks(self):
        return ReviewTask.objects.filter(item__queue=self)

    def progress(self) -> list[dict]:
        """Per reviewer: assigned, done, skipped, pending."""
        rows = self.tasks().order_by().values("reviewer__username").annotate(
            total=Count("id"),
            done=Count("id", filter=Q(state=ReviewTask.State.DONE)),
            skipped=Count("id", filter=Q(state=ReviewTask.State.SKIPPED)),
        )
        return sorted(({"reviewer": r["reviewer__username"], "total": r["total"],
                        "done": r["done"], "skipped": r["skipped"],
                        "pending": r["total"] - r["done"] - r["skipped"]} for r in rows),
                      key=lambda r: r["reviewer"])

    def neighbours(self, position: int, user) -> tuple[int | None, int | None]:
        """Previous and next position: among the user's own tasks when they have some here,
        otherwise among all items."""
        mine = ReviewTask.objects.filter(item__queue=self, reviewer=user)
        base = (QueueItem.objects.filter(queue=self, tasks__in=mine) if mine.exists()
                else self.items.all())
        prev = base.filter(position__lt=position).order_by("-position").values_list(
            "position", flat=True).first()
        nxt = base.filter(position__gt=position).order_by("position").values_list(
            "position", flat=True).first()
        return prev, nxt

    def next_pending(self, user, after: int = -1) -> int | None:
        """The user's next pending item after ``after``, wrapping round to the first."""
        pending = ReviewTask.objects.filter(item__queue=self, reviewer=user,
                                            state=ReviewTask.State.PENDING).order_by(
            "item__position").values_list("item__position", flat=True)
        return pending.filter(item__position__gt=after).first() or pending.first()


class QueueItem(models.Model):
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["queue", "position"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "position"], name="queue_item_position"),
            models.UniqueConstraint(fields=["queue", "sample"], name="queue_item_once"),
        ]

    def __str__(self) -> str:
        return f"{self.queue} #{self.position}"


class ReviewTask(models.Model):
    """One item for one reviewer: the unit of assignment and of progress."""

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        DONE = "done", "done"
        SKIPPED = "skipped", "skipped"

    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="tasks")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                 related_name="review_tasks")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    assigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                    on_delete=models.SET_NULL, related_name="+")
    assigned_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "reviewer"], name="review_task_once"),
        ]
        indexes = [
            # "My queues" and next pending: WHERE reviewer_id=? AND state=?.
            models.Index(fields=["reviewer", "state"], name="review_task_mine"),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} · item {self.item_id} · {self.state}"

    @classmethod
    def mark(cls, sample: Sample, user, state: str, queue: ReviewQueue | None = None) -> int:
        """Set the user's task(s) on ``sample`` (in ``queue``, or in every queue) to ``state``."""
        qs = cls.objects.filter(item__sample=sample, reviewer=user).exclude(state=state)
        if queue is not None:
            qs = qs.filter(item__queue=queue)
        if state == cls.State.SKIPPED:  # a skip never undoes a verdict
            qs = qs.filter(state=cls.State.PENDING)
        tasks = list(qs)
        for task in tasks:
            before = task.state
            task.state, task.updated_at = state, timezone.now()
            task.save(update_fields=["state", "updated_at"])
            AuditLog.record(user, f"task.{state}", task, {"state": before}, {"state": state})
        return len(tasks)


# --- verdicts -----------------------------------------------------------------------------------


class HumanVerdictQuerySet(models.QuerySet):
    def current(self):
        return self.filter(current=True)

    def export_overrides(self, run) -> dict[tuple[int, int], bool]:
        """{(problem_id, sample_index): export?} for the samples humans judged, over ``run`` and
        the runs it copied its samples from (a re-run from "export" inherits its parent's
        reviews; per reviewer, the verdict given on the nearest run wins). A sample any human
        rejects is left out; one every judging human accepts may go in."""
        lineage, seen, r = [], set(), run
        while r is not None and r.pk not in seen:
            lineage.append(r.pk)
            seen.add(r.pk)
            r = r.parent
        depth = {pk: i for i, pk in enumerate(lineage)}
        nearest: dict[tuple[int, int, int], tuple[int, str]] = {}
        for run_id, pid, idx, reviewer, verdict in self.current().filter(
                sample__run_id__in=lineage).values_list(
                "sample__run_id", "sample__problem_id", "sample__sample_index", "reviewer_id",
                "verdict"):
            key = (pid, idx, reviewer)
            if key not in nearest or depth[run_id] < nearest[key][0]:
                nearest[key] = (depth[run_id], verdict)
        out: dict[tuple[int, int], bool] = {}
        for (pid, idx, _), (_, verdict) in nearest.items():
            out[(pid, idx)] = out.get((pid, idx), True) and verdict in HumanVerdict.ACCEPTING
        return out


class HumanVerdict(models.Model):
    class Verdict(models.TextChoices):
        CORRECT = "correct", "correct"
        INCORRECT = "incorrect", "incorrect"
        BAD_FORMAT = "bad_format", "bad format"
        UNFAITHFUL = "unfaithful", "unfaithful reformatting"
        OTHER = "other", "other"

    ACCEPTING = frozenset({Verdict.CORRECT})

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="human_verdicts")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="+")
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    previous = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="next")
    current = models.BooleanField(default=True)

    objects = HumanVerdictQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One live verdict per reviewer per sample; older ones stay as its history.
            models.UniqueConstraint(fields=["sample", "reviewer"], condition=Q(current=True),
                                    name="verdict_current_once"),
        ]
        indexes = [
            # Export and agreement: WHERE current AND sample.run_id IN (...).
            models.Index(fields=["sample", "current"], name="verdict_sample_current"),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} · {self.verdict} · sample {self.sample_id}"

    @property
    def accepts(self) -> bool:
        return self.verdict in self.ACCEPTING

    @classmethod
    def give(cls, sample: Sample, reviewer, verdict: str, note: str = "",
             queue: ReviewQueue | None = None) -> HumanVerdict:
        """Record (or change) ``reviewer``'s verdict on ``sample`` and mark their task done."""
        if verdict not in cls.Verdict.values:
            raise ValueError(f"unknown verdict {verdict!r}")
        with transaction.atomic():
            old = cls.objects.select_for_update().filter(
                sample=sample, reviewer=reviewer, current=True).first()
            if old and old.verdict == verdict and old.note == note:
                made = old
            else:
                if old and not cls.objects.filter(pk=old.pk, current=True).update(current=False):
                    raise RuntimeError("the verdict changed underneath; try again")
                made = cls.objects.create(sample=sample, reviewer=reviewer, verdict=verdict,
                                          note=note, previous=old)
                AuditLog.record(
                    reviewer, "verdict.change" if old else "verdict.set", made,
                    {"verdict": old.verdict, "note": old.note, "id": old.pk} if old else None,
                    {"verdict": verdict, "note": note, "sample": sample.pk})
            ReviewTask.mark(sample, reviewer, ReviewTask.State.DONE, queue)
        return made

    def history(self) -> list[HumanVerdict]:
        out, v = [], self
        while v is not None:
            out.append(v)
            v = v.previous
        return out


# --- comments and tags --------------------------------------------------------------------------

MENTION = re.compile(r"(?<![\w@])@([\w.+-]+)")
TAG_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


class Tag(models.Model):
    name = models.CharField(max_length=40, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SampleTag(models.Model):
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="review_tags")
    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, related_name="uses")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                 related_name="+")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tag__name"]
        constraints = [models.UniqueConstraint(fields=["sample", "tag"], name="sample_tag_once")]

    def __str__(self) -> str:
        return f"{self.tag} on sample {self.sample_id}"

    @classmethod
    def add(cls, sample: Sample, name: str, user) -> SampleTag:
        name = name.strip().lower()
        if not TAG_NAME.match(name):
            raise ValueError("a tag is 1-40 lowercase letters, digits, '-', '_' or '.'")
        tag, _ = Tag.objects.get_or_create(name=name)
        st, created = cls.objects.get_or_create(sample=sample, tag=tag,
                                                defaults={"added_by": user})
        if created:
            AuditLog.record(user, "tag.add", sample, None, {"tag": name})
        return st

    @classmethod
    def remove(cls, sample: Sample, name: str, user) -> bool:
        deleted, _ = cls.objects.filter(sample=sample, tag__name=name).delete()
        if deleted:
            AuditLog.record(user, "tag.remove", sample, {"tag": name}, None)
        return bool(deleted)


class CommentQuerySet(models.QuerySet):
    def recent(self, limit: int = 50):
        return self.select_related("author", "sample__problem", "sample__run").order_by(
            "-created_at", "-id")[:limit]

    def mentioning(self, user):
        return self.filter(mentions=user)


class Comment(models.Model):
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="review_comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="+")
    body = models.TextField()
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True,
                                      related_name="review_mentions")
    created_at = models.DateTimeField(default=timezone.now)

    objects = CommentQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # The discussion page: ORDER BY created_at DESC LIMIT n.
            models.Index(fields=["-created_at"], name="comment_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.author} on sample {self.sample_id}: {self.body[:40]}"

    @classmethod
    def post(cls, sample: Sample, author, body: str) -> Comment:
        """A comment; ``@name`` mentions of teammates (users with a role) are linked to them."""
        names = set(MENTION.findall(body))
        users = [u for u in get_user_model().objects.filter(username__in=names, is_active=True)
                 if role_of(u) is not None]
        with transaction.atomic():
            comment = cls.objects.create(sample=sample, author=author, body=body)
            comment.mentions.set(users)
            AuditLog.record(author, "comment.add", comment, None,
                            {"sample": sample.pk, "body": body[:500],
                             "mentions": sorted(u.username for u in users)})
        return comment

    def body_html(self) -> SafeString:
        """The body escaped, with mentions of real teammates highlighted."""
        known = {u.username for u in self.mentions.all()}

        def link(m: re.Match) -> str:
            name = m.group(1)
            return f'<span class="mention">@{name}</span>' if name in known else m.group(0)

        # Usernames match [\w.+-]+, so escaping first leaves every mention intact.
        return mark_safe(MENTION.sub(link, escape(self.body)).replace("\n", "<br>"))


# --- agreement ----------------------------------------------------------------------------------


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa for two raters over the same items; None when chance agreement is total
    (both raters used one and the same label for everything)."""
    n = len(pairs)
    if n == 0:
        return None
    p_o = sum(a == b for a, b in pairs) / n
    ca, cb = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    p_e = sum(ca[c] * cb[c] for c in ca) / (n * n)
    if p_e == 1:
        return None
    return (p_o - p_e) / (1 - p_e)


def krippendorff_alpha(units: list[list[str]]) -> float | None:
    """Krippendorff's alpha for nominal data, any number of raters, missing ratings allowed:
    ``units`` holds the labels each item received; items with fewer than two are not pairable
    and are ignored. None when every pairable value is the same (no disagreement possible)."""
    o: Counter = Counter()  # the coincidence matrix
    for labels in units:
        m = len(labels)
        if m < 2:
            continue
        for i, j in ((i, j) for i in range(m) for j in range(m) if i != j):
            o[(labels[i], labels[j])] += 1 / (m - 1)
    n_c: Counter = Counter()
    for (c, _), v in o.items():
        n_c[c] += v
    n = sum(n_c.values())
    if n <= 1:
        return None
    observed = sum(v for (c, k), v in o.items() if c != k)
    expected = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k)
    if expected == 0:
        return None
    return 1 - (n - 1) * observed / expected


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def verifier_audit(run) -> dict:
    """Human-vs-verifier confusion per source and per verifier reason, counting the positive
    class as "correct". The verifier's verdict is the verify stage's (on the teacher trace);
    the human one is the majority of the current correct/incorrect verdicts on the sample
    (ties and the verdicts about formatting are left out: they do not judge correctness)."""
    votes: dict[int, Counter] = defaultdict(Counter)
    for sample_id, verdict in HumanVerdict.objects.current().filter(
            sample__run=run, verdict__in=["correct", "incorrect"]).values_list(
            "sample_id", "verdict"):
        votes[sample_id][verdict] += 1
    human = {sid: c["correct"] > c["incorrect"] for sid, c in votes.items()
             if c["correct"] != c["incorrect"]}
    anchors = dict(((pid, idx), (sid, src)) for sid, pid, idx, src in anchor_rows(run).filter(
        id__in=list(human)).values_list("id", "problem_id", "sample_index", "problem__source"))
    groups: dict[str, dict[str, Counter]] = {"source": defaultdict(Counter),
                                             "reason": defaultdict(Counter)}
    overall: Counter = Counter()
    verify_rows = Sample.objects.filter(run=run, stage=Stage.VERIFY).values_list(
        "problem_id", "sample_index", "correct", "reason")
    for pid, idx, ok, reason in verify_rows:
        if (pid, idx) not in anchors:
            continue
        sid, source = anchors[(pid, idx)]
        h = human[sid]
        cell = {(True, True): "tp", (True, False): "fp", (False, True): "fn",
                (False, False): "tn"}[(bool(ok), h)]
        for counter in (overall, groups["source"][source or "unlabelled"],
                        groups["reason"][reason or ("accepted" if ok else "unknown")]):
            counter[cell] += 1

    def figures(c: Counter) -> dict:
        return {"tp": c["tp"], "fp": c["fp"], "fn": c["fn"], "tn": c["tn"],
                "n": sum(c.values()),
                "precision": _ratio(c["tp"], c["tp"] + c["fp"]),
                "recall": _ratio(c["tp"], c["tp"] + c["fn"]),
                "agreement": _ratio(c["tp"] + c["tn"], sum(c.values()))}

    return {"overall": figures(overall),
            "by_source": {k: figures(v) for k, v in sorted(groups["source"].items())},
            "by_reason": {k: figures(v) for k, v in sorted(groups["reason"].items())}}


def reviewer_agreement(run) -> dict:
    """Inter-reviewer agreement on the samples of ``run`` seen by two or more reviewers, over
    the five verdicts: Cohen's kappa per pair of reviewers (on the samples both judged) and
    Krippendorff's alpha over everyone."""
    by_sample: dict[int, dict[str, str]] = defaultdict(dict)
    for sid, who, verdict in HumanVerdict.objects.current().filter(sample__run=run).values_list(
            "sample_id", "reviewer__username", "verdict"):
        by_sample[sid][who] = verdict
    shared = {sid: v for sid, v in by_sample.items() if len(v) >= 2}
    reviewers = sorted({who for v in shared.values() for who in v})
    pairs = []
    for a, b in combinations(reviewers, 2):
        both = [(v[a], v[b]) for v in shared.values() if a in v and b in v]
        if both:
            pairs.append({"a": a, "b": b, "n": len(both), "kappa": cohen_kappa(both),
                          "observed": sum(x == y for x, y in both) / len(both)})
    return {"samples": len(shared), "reviewers": reviewers, "pairs": pairs,
            "alpha": krippendorff_alpha([list(v.values()) for v in shared.values()])}
