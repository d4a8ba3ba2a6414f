"""Team review: queues from a filter, assignment with overlap, versioned verdicts that feed the
export, comments/tags/mentions, agreement figures checked against hand computations, the
side-by-side diff, and the audit log; viewers cannot change anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from experiments.models import (
    AuditLog,
    Comment,
    HumanVerdict,
    ReviewQueue,
    ReviewTask,
    RunState,
    SampleTag,
    TrainingSetVersion,
)
from experiments.models.review import (
    cohen_kappa,
    krippendorff_alpha,
    reviewer_agreement,
    verifier_audit,
)
from experiments.views.review import word_diff
from tests.support.accounts import client_for, make_user
from tests.support.review import make_reviewed_run
from workers.runner import execute

pytestmark = pytest.mark.django_db

V = HumanVerdict.Verdict


@pytest.fixture(autouse=True)
def _quiet_heartbeat(settings):
    settings.RUN_HEARTBEAT_SECONDS = 600


def test_queue_from_a_filter_and_a_seeded_random_draw(users):
    run, gens = make_reviewed_run([(True, True), (False, False), (True, False), (False, False),
                                   (True, True), (False, False)])
    failed = ReviewQueue.build(run, user=users["reviewer"], stage="verify", verdict="fail")
    assert [i.sample for i in failed.items.order_by("position")] == [gens[1], gens[3], gens[5]]
    odd = ReviewQueue.build(run, user=users["reviewer"], source="odd", stage="generate")
    assert {i.sample_id for i in odd.items.all()} == {gens[1].pk, gens[3].pk, gens[5].pk}

    a = ReviewQueue.build(run, user=users["reviewer"], sample_n=3, seed=11)
    b = ReviewQueue.build(run, user=users["reviewer"], sample_n=3, seed=11)
    ids = lambda q: list(q.items.order_by("position").values_list("sample_id", flat=True))  # noqa
    assert ids(a) == ids(b) and len(ids(a)) == 3 and a.seed == 11
    drawn = ReviewQueue.build(run, user=users["reviewer"], sample_n=2)
    assert drawn.seed is not None and drawn.items.count() == 2
    entry = AuditLog.objects.about(failed).get()
    assert entry.action == "queue.create" and entry.actor == users["reviewer"]
    assert entry.after["items"] == 3 and entry.after["filters"] == {"stage": "verify",
                                                                    "verdict": "fail"}


def test_assignment_deals_each_item_to_k_reviewers_evenly(users):
    run, gens = make_reviewed_run([(True, True)] * 6)
    queue = ReviewQueue.build(run, user=users["operator"])
    r = [make_user(f"rev{i}", "reviewer") for i in range(3)]
    assert queue.assign(r, overlap=2, by=users["operator"]) == 12
    for item in queue.items.all():
        assert item.tasks.values("reviewer").distinct().count() == 2
    assert sorted(p["total"] for p in queue.progress()) == [4, 4, 4]
    assert queue.assign(r, overlap=2, by=users["operator"]) == 0  # assigning again is harmless
    with pytest.raises(ValueError):
        queue.assign(r[:1], overlap=2, by=users["operator"])
    assert AuditLog.objects.about(queue).filter(action="queue.assign").count() == 2


def test_verdicts_are_versioned_and_audited(users):
    run, gens = make_reviewed_run([(True, True), (True, True)])
    queue = ReviewQueue.build(run, user=users["operator"])
    queue.assign([users["reviewer"]], by=users["operator"])
    first = HumanVerdict.give(gens[0], users["reviewer"], V.CORRECT, "looks right", queue=queue)
    assert queue.progress()[0]["done"] == 1
    second = HumanVerdict.give(gens[0], users["reviewer"], V.UNFAITHFUL, "skipped a step")
    first.refresh_from_db()
    assert not first.current and second.current and second.previous == first
    assert second.history() == [second, first]
    # The same verdict again is no new version.
    assert HumanVerdict.give(gens[0], users["reviewer"], V.UNFAITHFUL, "skipped a step") == second
    assert HumanVerdict.objects.filter(sample=gens[0]).count() == 2
    log = list(AuditLog.objects.filter(action__startswith="verdict.").order_by("at", "id"))
    assert [e.action for e in log] == ["verdict.set", "verdict.change"]
    assert log[1].before == {"verdict": "correct", "note": "looks right", "id": first.pk}
    assert log[1].after["verdict"] == "unfaithful" and log[1].actor == users["reviewer"]


def test_skip_leaves_a_done_task_alone_and_counts_in_progress(users):
    run, gens = make_reviewed_run([(True, True)] * 3)
    queue = ReviewQueue.build(run, user=users["reviewer"])
    queue.assign([users["reviewer"]], by=users["reviewer"])
    HumanVerdict.give(gens[0], users["reviewer"], V.CORRECT, queue=queue)
    assert ReviewTask.mark(gens[0], users["reviewer"], "skipped", queue) == 0
    assert ReviewTask.mark(gens[1], users["reviewer"], "skipped", queue) == 1
    assert queue.progress() == [{"reviewer": "reviewer", "total": 3, "done": 1, "skipped": 1,
                                 "pending": 1}]
    assert queue.next_pending(users["reviewer"]) == 2


def test_human_overrides_feed_the_export(users, settings, tmp_path):
    """Rejected by a human: out. Accepted against the verifier: in when it has a reformatted
    text (it failed re-verification); a sample the verifier rejected before reformatting has no
    training text, so accepting it cannot put it in."""
    settings.RUNS_DIR = tmp_path / "runs"
    run, gens = make_reviewed_run([(True, True), (True, True), (True, False), (False, False)])
    rev, rev2 = users["reviewer"], make_user("second", "reviewer")
    HumanVerdict.give(gens[1], rev, V.INCORRECT, "the boxed answer is right by luck")
    HumanVerdict.give(gens[2], rev, V.CORRECT, "re-verifier misread the box")
    HumanVerdict.give(gens[2], rev2, V.CORRECT)
    HumanVerdict.give(gens[3], rev, V.CORRECT)
    HumanVerdict.give(gens[0], rev2, V.CORRECT)

    child = run.rerun_from("export", user=users["operator"])
    assert execute("curation", child.pk, hostname="test") == RunState.SUCCEEDED
    child.refresh_from_db()
    tsv = TrainingSetVersion.objects.get(source_run=child)
    users_prompts = [r["conversations"][0]["value"] for r in json.loads(Path(tsv.path).read_text())]
    assert [p.split(":")[0] for p in users_prompts] == ["Problem 0", "Problem 2"]
    assert child.exported_rows == 2 == tsv.row_count

    # One dissenting reviewer is enough to keep a sample out.
    HumanVerdict.give(gens[2], rev2, V.BAD_FORMAT, "solution section is empty")
    again = run.rerun_from("export", user=users["operator"])
    assert execute("curation", again.pk, hostname="test") == RunState.SUCCEEDED
    again.refresh_from_db()
    assert again.exported_rows == 1


def test_cohen_kappa_and_krippendorff_alpha_by_hand():
    # A: c c c c c c i i i i / B: c c c c i i i i c i. Observed 7/10; A says c 6 times, B 5
    # times: chance (6·5 + 4·5)/100 = 0.5, so kappa = (0.7 - 0.5) / 0.5 = 0.4.
    a = list("cccccciiii")
    b = list("cccciiiici")
    assert cohen_kappa(list(zip(a, b, strict=True))) == pytest.approx(0.4)
    # Coincidences: cc 8, ci 3, ic 3, ii 6; n_c 11, n_i 9, n 20:
    # alpha = 1 - (20 - 1) · 6 / (2 · 11 · 9) = 1 - 114/198 = 14/33.
    assert krippendorff_alpha([list(p) for p in zip(a, b, strict=True)]) == pytest.approx(14 / 33)
    # Three raters, a missing rating, an unpairable unit: cc 3 + 1, ci 1, ic 1, ii 2;
    # n_c 5, n_i 3, n 8: alpha = 1 - 7 · 2 / (2 · 15) = 8/15.
    units = [["c", "c", "c"], ["c", "c", "i"], ["i", "i"], ["c"]]
    assert krippendorff_alpha(units) == pytest.approx(8 / 15)
    assert cohen_kappa([("c", "c"), ("c", "c")]) is None  # chance agreement is total
    assert krippendorff_alpha([["c", "c"]]) is None


def test_agreement_figures_from_stored_verdicts(users):
    ok = [True] * 6 + [False] * 4
    reasons = {6: "wrong_answer", 7: "wrong_answer", 8: "no_answer_found", 9: "verifier_timeout"}
    run, gens = make_reviewed_run([(v, v) for v in ok], reasons=reasons)
    a, b = users["reviewer"], make_user("bea", "reviewer")
    human = "ccciccciii"  # c: the reviewer says correct
    for g, h in zip(gens, human, strict=True):
        HumanVerdict.give(g, a, V.CORRECT if h == "c" else V.INCORRECT)
    HumanVerdict.give(gens[3], b, V.CORRECT)  # a tie on sample 3: left out of the audit
    HumanVerdict.give(gens[1], b, V.BAD_FORMAT)  # about formatting: not a correctness vote

    audit = verifier_audit(run)
    # Samples 0-9 minus 3. TP 0 1 2 4 5; FN 6; TN 7 8 9.
    assert audit["overall"] | {} == {"tp": 5, "fp": 0, "fn": 1, "tn": 3, "n": 9,
                                     "precision": 1.0, "recall": pytest.approx(5 / 6),
                                     "agreement": pytest.approx(8 / 9)}
    even, odd = audit["by_source"]["even"], audit["by_source"]["odd"]
    assert (even["tp"], even["fn"], even["tn"], even["recall"]) == (3, 1, 1, 0.75)
    assert (odd["tp"], odd["fp"], odd["tn"], odd["precision"], odd["recall"]) == (2, 0, 2, 1, 1)
    assert audit["by_reason"]["wrong_answer"] | {} == {
        "tp": 0, "fp": 0, "fn": 1, "tn": 1, "n": 2, "precision": None, "recall": 0.0,
        "agreement": 0.5}
    assert audit["by_reason"]["accepted"]["tp"] == 5
    assert audit["by_reason"]["verifier_timeout"]["tn"] == 1

    # Between reviewers: sample 1 (correct vs bad format) and sample 3 (incorrect vs correct).
    agreement = reviewer_agreement(run)
    assert agreement["samples"] == 2 and agreement["reviewers"] == ["bea", "reviewer"]
    pair = agreement["pairs"][0]
    assert pair["n"] == 2 and pair["observed"] == 0
    # Pairs (bad_format, correct) and (correct, incorrect): bea b 1 c 1, reviewer c 1 i 1;
    # p_o 0, p_e (1·1)/4 = 0.25 (only "correct" is common): kappa = -0.25/0.75 = -1/3.
    assert pair["kappa"] == pytest.approx(-1 / 3)
    # Coincidences b-c 1, c-b 1, i-c 1, c-i 1; n_b 1, n_c 2, n_i 1, n 4; expected pairs
    # 2·(1·2 + 1·1 + 2·1) = 10: alpha = 1 - 3 · 4 / 10 = -0.2.
    assert agreement["alpha"] == pytest.approx(-0.2)

    page = client_for(users["viewer"]).get(reverse("review_agreement") + f"?run={run.pk}")
    assert page.status_code == 200
    assert b"precision 1.000" in page.content and b"-0.200" in page.content


def test_reviewer_works_a_queue_through_the_pages_and_a_viewer_changes_nothing(users):
    run, gens = make_reviewed_run([(True, True), (False, False), (True, True)])
    rev = users["reviewer"]
    client = client_for(rev, csrf=False)
    resp = client.post(reverse("review_queue_new"), {"run": run.pk, "stage": "generate"})
    queue = ReviewQueue.objects.get()
    assert resp.status_code == 302 and resp["Location"] == queue.get_absolute_url()
    assert client.get(reverse("review_work", args=[queue.pk]))["Location"] == reverse(
        "review_item", args=[queue.pk, 0])
    page = client.get(reverse("review_item", args=[queue.pk, 0]))
    assert page.status_code == 200 and b'data-key="a"' in page.content
    resp = client.post(reverse("review_item_verdict", args=[queue.pk, 0]),
                       {"verdict": "incorrect", "note": "wrong"})
    assert resp["Location"] == reverse("review_item", args=[queue.pk, 1])
    resp = client.post(reverse("review_item_skip", args=[queue.pk, 1]))
    assert resp["Location"] == reverse("review_item", args=[queue.pk, 2])
    resp = client.post(reverse("review_item_verdict", args=[queue.pk, 2]), {"verdict": "correct"})
    assert resp["Location"] == queue.get_absolute_url()  # finished
    assert queue.progress()[0] | {} == {"reviewer": "reviewer", "total": 3, "done": 2,
                                        "skipped": 1, "pending": 0}

    viewer = client_for(users["viewer"])
    before = (HumanVerdict.objects.count(), Comment.objects.count(), SampleTag.objects.count(),
              AuditLog.objects.count(), ReviewQueue.objects.count())
    for name, args, data in [
            ("review_item_verdict", [queue.pk, 0], {"verdict": "correct"}),
            ("review_item_skip", [queue.pk, 0], {}),
            ("review_sample_verdict", [gens[0].pk], {"verdict": "correct"}),
            ("review_comment", [gens[0].pk], {"body": "hi"}),
            ("review_tag", [gens[0].pk], {"name": "x"}),
            ("review_queue_new", [], {"run": run.pk}),
            ("review_queue_assign", [queue.pk], {"reviewers": [rev.pk], "overlap": 1})]:
        assert viewer.post(reverse(name, args=args), data).status_code == 403, name
    assert (HumanVerdict.objects.count(), Comment.objects.count(), SampleTag.objects.count(),
            AuditLog.objects.count(), ReviewQueue.objects.count()) == before
    # A reviewer cannot assign; an operator can, and sees everyone's progress.
    assert client.post(reverse("review_queue_assign", args=[queue.pk]),
                       {"reviewers": [rev.pk], "overlap": 1}).status_code == 403
    op = client_for(users["operator"])
    other = make_user("other", "reviewer")
    op.post(reverse("review_queue_assign", args=[queue.pk]),
            {"reviewers": [rev.pk, other.pk], "overlap": 2})
    assert {p["reviewer"] for p in queue.progress()} == {"reviewer", "other"}
    assert b"other" in op.get(queue.get_absolute_url()).content
    mine = client.get(queue.get_absolute_url()).content.decode()
    assert "Your progress" in mine and "<td>other</td>" not in mine


def test_comments_mention_teammates_safely_and_tags_are_listed(users):
    run, gens = make_reviewed_run([(True, True)])
    client = client_for(users["reviewer"])
    body = "@operator look <script>alert(1)</script> and @nobody and @norole"
    client.post(reverse("review_comment", args=[gens[0].pk]), {"body": body})
    comment = Comment.objects.get()
    assert list(comment.mentions.values_list("username", flat=True)) == ["operator"]
    html = comment.body_html()
    assert '<span class="mention">@operator</span>' in html and "<script>" not in html
    assert "@nobody" in html and "&lt;script&gt;" in html
    client.post(reverse("review_tag", args=[gens[0].pk]), {"name": "copy-error"})
    client.post(reverse("review_tag", args=[gens[0].pk]), {"name": "Bad Tag!"})
    assert list(SampleTag.objects.values_list("tag__name", flat=True)) == ["copy-error"]

    page = client_for(users["operator"]).get(reverse("review_discussion")).content.decode()
    assert "Mentioning you" in page and "copy-error" in page and "<script>alert" not in page
    assert "Mentioning you" not in client_for(users["viewer"]).get(
        reverse("review_discussion")).content.decode()
    client.post(reverse("review_tag", args=[gens[0].pk]), {"name": "copy-error", "remove": "on"})
    assert not SampleTag.objects.exists()
    actions = list(AuditLog.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["comment.add", "tag.add", "tag.remove"]
    assert b"tag.remove" in client_for(users["viewer"]).get(reverse("review_audit")).content


def test_raw_vs_reformatted_diff_highlights_words_and_escapes_html():
    raw = "We add <b>2</b> and 2.\nSo it is 4. <script>alert(1)</script>\n"
    ref = "We add <b>2</b> and two.\nSo it is 4.\n"
    d = word_diff(raw, ref)
    assert "<del>2." in d["left"] and "<ins>two." in d["right"]
    assert "<del>&lt;script&gt;alert(1)&lt;/script&gt;" in d["left"]
    assert "<script>" not in d["left"] + d["right"] and "<b>" not in d["left"] + d["right"]
    assert 0.6 < d["copied"] < 1 and d["raw_words"] == 10


def test_hostile_200k_trace_page_renders_escaped(users):
    hostile = ("<script>window.__pwned=1</script><img src=x onerror=alert(1)>"
               "[x](javascript:alert(2)) <iframe src=//evil></iframe> $x^2$ ")
    text = (hostile * (200_000 // len(hostile) + 1))[:200_000]
    run, gens = make_reviewed_run([(True, True)], raw_text={0: text})
    queue = ReviewQueue.build(run, user=users["reviewer"])
    for url in (reverse("review_item", args=[queue.pk, 0]), reverse("review_diff", args=[gens[0].pk]),
                reverse("review_pair", args=[run.pk, gens[0].problem_id])):
        body = client_for(users["reviewer"]).get(url).content.decode()
        assert "window.__pwned" in body  # the text is there, as text
        assert "<script>window" not in body and "<img" not in body and "<iframe" not in body
        assert 'href="javascript' not in body
