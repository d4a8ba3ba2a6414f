"""Factories for review tests: a finished curation run with samples at every stage."""

from __future__ import annotations

from experiments.models import CurationRun, Sample
from tests.support.curation import make_dataset, make_problem, make_run, make_version

REFORMATTED = ("<|begin_of_thought|>\n\n{thought}\n\n<|end_of_thought|>\n\n"
               "<|begin_of_solution|>\n\n{solution}\n\n<|end_of_solution|>")


def make_reviewed_run(verdicts: list[tuple[bool, bool]], *, sources=None, reasons=None,
                      raw_text=None, name: str = "review") -> tuple[CurationRun, list[Sample]]:
    """A finished curation run (its stages are stored rows; no network) with one problem per
    entry of ``verdicts``: (verify passed, re-verify passed). As in the pipeline, only verified
    samples are reformatted and re-verified. Returns the run and the generate rows."""
    dataset = make_dataset(name)
    problems = [make_problem(dataset, i, prompt=f"Problem {i}: what is {i}+0?", answer=str(i),
                             source=(sources or {}).get(i, "even" if i % 2 == 0 else "odd"))
                for i in range(len(verdicts))]
    run = make_run(make_version(problems, name=name), "http://127.0.0.1:9/v1")
    run.name = name
    run.state = "succeeded"
    run.save(update_fields=["name", "state"])
    gens = []
    for i, (p, (ok, reok)) in enumerate(zip(problems, verdicts, strict=True)):
        text = (raw_text or {}).get(i) or (
            f"Let me think. We add {i} and 0. So the sum is {i}.\n\nThe answer is $\\boxed{{{i}}}$")
        gens.append(Sample.objects.create(
            run=run, problem=p, stage="generate", text=text, correct=True,
            messages=[{"role": "system", "content": "sys"},
                      {"role": "user", "content": p.prompt}]))
        Sample.objects.create(run=run, problem=p, stage="verify", correct=ok,
                              reason="" if ok else (reasons or {}).get(i, "wrong_answer"))
        if not ok:
            continue
        Sample.objects.create(
            run=run, problem=p, stage="reformat", correct=True,
            text=REFORMATTED.format(thought=f"Let me think. We add {i} and zero. So the sum "
                                            f"is {i}.", solution=f"$\\boxed{{{i}}}$"))
        Sample.objects.create(run=run, problem=p, stage="reverify", correct=reok,
                              reason="" if reok else "wrong_answer")
    return run, gens
