"""Turn one prompt template and per-row images into left-padded model inputs, quickly.

Every row of a scoring or voting batch has the same text; only the number of image tokens
differs. Qwen-VL processors re-tokenize the full text per row; here the template is
tokenized once and each image placeholder expanded to its grid's token count, which is
what the processor does (tests check equality). Other processors take the generic path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import torch
from PIL import Image

from app.quality.images import PreparedImage


def _fingerprint(image_processor) -> str:
    """A digest of the image processor's type and settings: equal digests, equal vision inputs."""
    settings = image_processor.to_dict() if hasattr(image_processor, "to_dict") else {}
    text = json.dumps([type(image_processor).__name__, settings], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class PromptEncoder:
    """Encodes (template text, rows of images) like `processor(text, images, padding left)`."""

    def __init__(self, processor) -> None:
        self.processor = processor
        image_processor = getattr(processor, "image_processor", None)
        self.image_token_id = getattr(processor, "image_token_id", None)
        self.merge_size = getattr(image_processor, "merge_size", None)
        self.fast = (
            self.image_token_id is not None
            and self.merge_size is not None
            and hasattr(processor, "replace_image_token")  # Qwen-VL style expansion
        )
        self._ids: dict[str, list[int]] = {}
        # Vision inputs made by any encoder with this key are ours too (also across processes).
        self.key = _fingerprint(image_processor)

    def preprocess(self, image: Image.Image) -> Image.Image | PreparedImage:
        """The image with its vision inputs computed now, for a later batch to reuse; the image
        alone where only the processor's generic path applies."""
        if not self.fast:
            return image
        vision = self.processor.image_processor(images=[image], return_tensors="pt")
        return PreparedImage(image, dict(vision), encoder=self.key)

    def __call__(self, text: str, rows: Sequence[Sequence[Image.Image | PreparedImage]]) -> dict:
        images = [img for row in rows for img in row]
        if not self.fast:
            return dict(
                self.processor(
                    text=[text] * len(rows),
                    images=[img.image if isinstance(img, PreparedImage) else img for img in images],
                    padding=True,
                    padding_side="left",
                    return_tensors="pt",
                )
            )
        return self._fast(text, rows, images)

    def _template_ids(self, text: str) -> list[int]:
        if text not in self._ids:
            ids = self.processor.tokenizer(text, add_special_tokens=False)["input_ids"]
            self._ids[text] = list(ids)
        return self._ids[text]

    def _vision(self, images: list) -> dict:
        """pixel_values and image_grid_thw of `images` in order, reusing what preprocess made."""
        mine = [isinstance(img, PreparedImage) and img.encoder == self.key for img in images]
        if not any(mine):
            raw = [img.image if isinstance(img, PreparedImage) else img for img in images]
            return self.processor.image_processor(images=raw, return_tensors="pt")
        todo = [
            img.image if isinstance(img, PreparedImage) else img
            for img, m in zip(images, mine, strict=True)
            if not m
        ]
        fresh = iter([])
        if todo:
            batch = self.processor.image_processor(images=todo, return_tensors="pt")
            sizes = batch["image_grid_thw"].prod(-1).tolist()
            fresh = iter(
                zip(
                    batch["pixel_values"].split(sizes),
                    batch["image_grid_thw"].split(1),
                    strict=True,
                )
            )
        parts = [
            (img.vision["pixel_values"], img.vision["image_grid_thw"]) if m else next(fresh)
            for img, m in zip(images, mine, strict=True)
        ]
        return {
            "pixel_values": torch.cat([pv for pv, _ in parts]),
            "image_grid_thw": torch.cat([grid for _, grid in parts]),
        }

    def _fast(self, text: str, rows, images) -> dict:
        vision = self._vision(images)
        grid = vision["image_grid_thw"]
        per_image = (grid.prod(-1) // self.merge_size**2).tolist()
        template = self._template_ids(text)
        placeholders = sum(t == self.image_token_id for t in template)
        if any(len(row) != placeholders for row in rows):
            raise ValueError(f"the prompt has {placeholders} image slots per row")
        sequences, types, cursor = [], [], 0
        for _ in rows:
            ids, kinds = [], []
            for token in template:
                if token == self.image_token_id:
                    ids += [token] * per_image[cursor]
                    kinds += [1] * per_image[cursor]
                    cursor += 1
                else:
                    ids.append(token)
                    kinds.append(0)
            sequences.append(ids)
            types.append(kinds)
        width = max(map(len, sequences))
        pad = self.processor.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        mm_types = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (ids, kinds) in enumerate(zip(sequences, types, strict=True)):
            input_ids[i, width - len(ids) :] = torch.tensor(ids)
            mask[i, width - len(ids) :] = 1
            mm_types[i, width - len(ids) :] = torch.tensor(kinds)
        return {
            "input_ids": input_ids,
            "attention_mask": mask,
            "mm_token_type_ids": mm_types,
            "pixel_values": vision["pixel_values"],
            "image_grid_thw": grid,
        }
