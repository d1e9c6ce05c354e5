"""Python client of the EvoQuality API (httpx): `Client` (sync) and `AsyncClient` share the
request building and answer parsing; only sending differs.

    from app.client import Client
    with Client("http://127.0.0.1:8000", token="...") as api:
        api.score(["a.jpg", "photos/"], mode="sampled").results[0].score
        api.rounds.wait(api.rounds.start({"pairs": 2000}).id)
"""

from app.client.aio import AsyncClient
from app.client.protocol import ApiError, ImageInput
from app.client.sync import Client
from app.client.uploads import image_files, plan_batches

__all__ = ["ApiError", "AsyncClient", "Client", "ImageInput", "image_files", "plan_batches"]
