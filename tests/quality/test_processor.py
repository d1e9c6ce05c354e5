"""load_processor: the stock processor where torchvision is installed, else the family's own."""

from transformers import tokenization_utils_base

from app.quality import processor as processor_module
from app.quality.families import of_checkpoint
from app.quality.processor import load_processor


def test_without_torchvision_the_family_processor_reads_the_tokenizer_once(
    tiny_reasoning_dir, monkeypatch
):
    # Stock loading reads the 151k-token vocabulary before its video part fails; a second read
    # cost ~1 s per model load, training step set-up and checkpoint write.
    monkeypatch.setattr(processor_module, "has_torchvision", lambda: False)
    base = tokenization_utils_base.PreTrainedTokenizerBase
    read = base.from_pretrained.__func__
    calls = []

    def counting(cls, *args, **kwargs):
        calls.append(cls)
        return read(cls, *args, **kwargs)

    monkeypatch.setattr(base, "from_pretrained", classmethod(counting))
    processor = load_processor(tiny_reasoning_dir)
    assert len(calls) == 1
    assert type(processor) is of_checkpoint(tiny_reasoning_dir).processor_class
    assert len(processor.tokenizer) > 150_000  # Qwen's vocabulary, read in full
