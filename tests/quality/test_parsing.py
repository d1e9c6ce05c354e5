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
