from app.settings import Settings
from workers.celery_app import celery_config
from workers.run import worker_argv


def test_the_train_stage_can_have_its_own_queue(tmp_path):
    routes = celery_config(Settings(data_dir=tmp_path, train_queue="train"))["task_routes"]
    assert routes["evoq.rounds.train"] == {"queue": "train"}
    assert routes["evoq.rounds.vote_chunk"] == {"queue": "gpu"}
    default = celery_config(Settings(data_dir=tmp_path))["task_routes"]
    assert default["evoq.rounds.train"] == {"queue": "gpu"}


def test_named_workers_get_their_own_node_name():
    assert "--hostname=gpu3@%h" in worker_argv(["gpu"], "solo", 1, False, name="gpu3")
    assert not any(a.startswith("--hostname") for a in worker_argv(["gpu"], "solo", 1, False))
