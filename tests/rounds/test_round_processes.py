"""A round whose pairs_per_step does not split over the training processes is refused when it
is created (422 naming both numbers), not after its votes."""

import pytest
from fastapi.testclient import TestClient

from app.errors import EvoqError
from app.main import create_app
from app.rounds.schemas import RoundConfigIn
from app.settings import Settings

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tmp_path):
    settings = Settings(data_dir=tmp_path, admin_token=TOKEN, train_processes=4)
    with TestClient(create_app(settings, load_model=False)) as running:
        yield running


@pytest.mark.parametrize("path", ["/v1/admin/rounds", "/v1/admin/schedule"])
def test_pairs_per_step_that_does_not_split_over_the_processes_is_a_422(client, path):
    config = {"pairs_per_step": 6}
    body = {"config": config} if path.endswith("rounds") else {"enabled": True, "config": config}
    answer = client.request(
        "POST" if path.endswith("rounds") else "PUT", path, json=body, headers=AUTH
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()
    assert error["error"] == "invalid_request"
    assert "pairs_per_step (6)" in error["detail"] and "EVOQ_TRAIN_PROCESSES=4" in error["detail"]
    assert [p["field"] for p in error["problems"]] == ["config.pairs_per_step"]


def test_micro_batches_must_split_each_process_share():
    RoundConfigIn(pairs_per_step=8, gradient_accumulation_steps=4).check_training_processes(4)
    with pytest.raises(EvoqError) as refused:
        RoundConfigIn(pairs_per_step=8, gradient_accumulation_steps=8).check_training_processes(4)
    assert refused.value.status_code == 422
    assert "gradient_accumulation_steps (8)" in refused.value.detail
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        RoundConfigIn(pairs_per_step=3, gradient_accumulation_steps=4)
    grpo = RoundConfigIn(pairs_per_step=8, gradient_accumulation_steps=4).grpo_config()
    assert grpo.gradient_accumulation_steps == 4
