"""`vidsight eval` end to end with the tiny random model on a generated video: it runs and scores."""

from __future__ import annotations

import argparse
import json

import pytest

from api.commands import eval as eval_cmd
from vidsight.settings import Settings
from vidsight.synth.video import moving_boxes_script, write_video


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    eval_cmd.add_parser(parser.add_subparsers())
    return parser.parse_args(argv)


def test_eval_reports_accuracy_over_every_item(tmp_path, capsys):
    video = write_video(
        tmp_path / "boxes.mp4", moving_boxes_script(width=112, height=84, duration_s=4.0)
    ).path
    items = [
        {
            "video": video.name,
            "question": "How many boxes move?",
            "options": ["one", "two", "three"],
            "answer": "B",
        },
        {"video": video.name, "question": "Is there a cut?", "options": ["yes", "no"], "answer": 1},
        {
            "video": str(video),
            "question": "Which box is faster?",
            "options": ["left", "right"],
            "answer": "left",
        },
    ]
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    args = _parse(["eval", str(qa), "--fps", "2", "--json"])
    assert args.handler(args, Settings(data_dir=tmp_path)) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    per_item, summary = lines[:-1], lines[-1]
    assert [line["answer"] for line in per_item] == ["B", "B", "A"]
    assert summary["items"] == 3 and summary["correct"] == sum(line["correct"] for line in per_item)
    assert summary["accuracy"] == pytest.approx(summary["correct"] / 3, abs=1e-4)
    assert all(line["predicted"] in "ABC" for line in per_item)


@pytest.mark.parametrize(("answer", "expected"), [("C", 2), ("c", 2), (0, 0), ("two", 1)])
def test_answers_are_letters_indices_or_option_text(answer, expected):
    assert eval_cmd.answer_index(answer, ["one", "two", "three"]) == expected


def test_bad_answer_names_what_is_allowed():
    with pytest.raises(eval_cmd.BadItemError, match="A-C"):
        eval_cmd.answer_index("Z", ["one", "two", "three"])
