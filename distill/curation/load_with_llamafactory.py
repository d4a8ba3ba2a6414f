"""Load an exported training set with LLaMA-Factory's own dataset loader and print a summary.

Runs in the training environment (LLaMA-Factory cannot share skyboard's virtualenv), so it
imports nothing from skyboard:

    .venv-train/bin/python distill/curation/load_with_llamafactory.py DATASET_DIR DATASET_NAME

Prints one JSON object: {"rows": n, "first": {"_system", "_prompt", "_response"}}; exits
non-zero when LLaMA-Factory rejects the file or its dataset_info entry.
"""

from __future__ import annotations

import json
import sys
import tempfile


def main(dataset_dir: str, name: str) -> None:
    from llamafactory.data.loader import _load_single_dataset
    from llamafactory.data.parser import get_dataset_list
    from llamafactory.hparams import DataArguments, ModelArguments
    from transformers import Seq2SeqTrainingArguments

    [attr] = get_dataset_list([name], dataset_dir)
    data_args = DataArguments(dataset_dir=dataset_dir, dataset=[name], template="qwen")
    model_args = ModelArguments(model_name_or_path="unused")
    with tempfile.TemporaryDirectory() as out:
        training_args = Seq2SeqTrainingArguments(output_dir=out, report_to=[])
        dataset = _load_single_dataset(attr, model_args, data_args, training_args)
    first = dataset[0] if len(dataset) else {}
    print(json.dumps({"rows": len(dataset), "formatting": attr.formatting,
                      "first": {k: first.get(k) for k in ("_system", "_prompt", "_response")}}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
