"""A Whisper model with random weights, converted for faster-whisper (CTranslate2), written offline.

No real Whisper model can be had without the network; this one exercises everything around the model (loading a
folder, decoding audio, segments, word times) and hears nothing: its text is random words ("w17").
Needs transformers (to build the model) and ctranslate2 (to convert it; it comes with faster-whisper).
"""
from __future__ import annotations

from pathlib import Path

SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
            "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]


def write(folder: Path, layers: int = 1, width: int = 64, heads: int = 2, words: int = 100) -> Path:
    """An English-only Whisper in `folder` (CTranslate2 takes a vocabulary under 51,865 tokens for English-only);
    the defaults make it tiny, benchmarks/speech.py gives it the real sizes' dimensions (and 50,353 words, the .en
    models' vocabulary)."""
    import ctranslate2
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]  # Whisper's timestamp tokens follow <|notimestamps|>
    vocab = {t: i for i, t in enumerate(["[UNK]", *(f"w{i}" for i in range(words)), *SPECIALS, *stamps])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(SPECIALS + stamps)
    eot = vocab["<|endoftext|>"]
    config = WhisperConfig(vocab_size=len(vocab), num_mel_bins=80, encoder_layers=layers, decoder_layers=layers,
                           d_model=width, encoder_attention_heads=heads, decoder_attention_heads=heads,
                           encoder_ffn_dim=4 * width, decoder_ffn_dim=4 * width, pad_token_id=eot, bos_token_id=eot,
                           eos_token_id=eot,
                           decoder_start_token_id=vocab["<|startoftranscript|>"], begin_suppress_tokens=[],
                           suppress_tokens=[])
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config.no_timestamps_token_id = vocab["<|notimestamps|>"]
    model.generation_config.alignment_heads = [[0, 0], [0, 1]]  # the cross-attention heads word times come from
    hf = folder / "transformers"
    model.save_pretrained(hf)
    tokenizer.save(str(hf / "tokenizer.json"))
    out = folder / "ctranslate2"
    ctranslate2.converters.TransformersConverter(str(hf), copy_files=["tokenizer.json"]).convert(str(out))
    return out
