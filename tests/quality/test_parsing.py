import pytest

from app.quality.parsing import parse_choice, parse_score


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>The image is sharp but a bit dark, maybe 2 or 3.</think> \\boxed{3.75}", 3.75),
        ("\\boxed{2} first guess, on reflection \\boxed{4.5}", 4.5),
        ("\\boxed{4.5} then a box without a number \\boxed{none}", 4.5),
        ("4", 4.0),
        ("3.25", 3.25),
        ("  5\n", 5.0),
        ("\\boxed{7}", 5.0),  # out of range in a box: clamped
        ("\\boxed{-2}", 1.0),  # negative in a box: clamped
        ("\\boxed{0.5}", 1.0),
        ("The rating is 4.20 out of five.", 4.2),
        ("Between 1-5 I give it 2.5", 2.5),
        ("I rate it 4/5", 4.0),  # denominator ignored
        ("score: 3, not 9", 3.0),  # the last number in range, 9 is not
        ("Rating: \\boxed{Score: 3.5}", 3.5),
    ],
)
def test_parse_score_reads_the_answer(text, expected):
    assert parse_score(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    ["", None, "garbage ###", "-3", "7", "0.2", "10 out of 10", "Qwen2 says nothing", "\\boxed{}"],
)
def test_parse_score_never_invents_a_number(text):
    assert parse_score(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1", 1),
        ("<think>image 0 is blurry, so</think> \\boxed{1}", 1),
        ("\\boxed{0} no wait \\boxed{1}", 1),
        ("The answer is 0.", 0),
        ("1<|im_end|>", 1),
    ],
)
def test_parse_choice(text, expected):
    assert parse_choice(text) == expected


@pytest.mark.parametrize("text", ["", None, "2", "\\boxed{2}", "both are fine", "-", "0.5"])
def test_parse_choice_invalid(text):
    assert parse_choice(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>sharp, well lit</think> \\boxed{3.75}", 3.75),
        ("<think>fine</think> <answer>4.25</answer>", 4.25),
        ("<think>hmm \\boxed{2}</think> final: \\boxed{4}", 4.0),
    ],
)
def test_reasoning_score_reads_only_a_marked_answer(text, expected):
    assert parse_score(text, reasoning=True) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "lenient"),
    [
        ("<think>There are 3 people in the frame and the light is", 3.0),  # cut off
        ("<think>good</think> I would say 4.5", 4.5),  # an answer outside the box
        ("3.75", 3.75),  # a bare answer-only output is no reasoning answer
        ("<think>a box with no number</think> \\boxed{}", None),
    ],
)
def test_reasoning_score_never_falls_back_to_a_loose_number(text, lenient):
    assert parse_score(text, reasoning=True) is None
    # The answer-only reading of the same text finds the number the strict one refuses.
    assert parse_score(text, reasoning=False) == lenient


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>image 1 is sharper than image 2</think> \\boxed{0}", 0),
        ("<think>the second is cleaner</think><answer>1</answer>", 1),
    ],
)
def test_reasoning_choice_reads_only_a_marked_answer(text, expected):
    assert parse_choice(text, reasoning=True) == expected


@pytest.mark.parametrize(
    "text",
    [
        "<think>image 1 is sharper than image 2",  # truncated: no vote for either image
        "<think>done</think> The answer is 0.",
        "1",
    ],
)
def test_reasoning_choice_is_invalid_without_a_box(text):
    assert parse_choice(text, reasoning=True) is None


def test_answer_only_keeps_bare_answers():
    assert parse_score("3", reasoning=False) == 3.0
    assert parse_choice("0", reasoning=False) == 0
    assert parse_score("3 people") == 3.0  # answer-only: the lenient reading stays
