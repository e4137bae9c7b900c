"""A row's context: what its seed knows about the picture beyond the caption. The one owner of its kinds.

The `scene` column of every batch, shard and export carries it as JSON text (or null). Three kinds:

- `world`: a world scene graph, `{"objects": [{"shape", "colour", "size", "texture", "x", "y"}, ...]}`
  (`unicorn.world`), exact: programs, grounding, the scene check and the report's real images all use it.
- `boxes`: LLaVA's symbolic context, `{"captions": [...], "instances": [{"category", "bbox": [x1, y1, x2, y2]}]}`
  (normalised boxes): programs ask about categories and positions, grounding and the scene check use the
  categories (an approximation: no attributes), LLaVA's conv/detail/complex kinds read captions + boxes. The report
  has no real images for it (there is no renderer for COCO boxes) and says so.
- `none`: no context (plain caption seeds): only the caption; programs have nothing to ask and say so.

Every site that reads the column goes through `RowContext.decode`, so a new kind is added here and in the sites
that can use it, and every other site sees `kind` and does nothing, instead of guessing from keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import InputError

KINDS = ("world", "boxes", "none")


def kind_of(data: Any) -> str:
    """The kind of a decoded context (a dict or None)."""
    if not data:
        return "none"
    if not isinstance(data, dict):
        raise InputError(f"a row's context must be a JSON object, got {type(data).__name__}")
    if "instances" in data:
        return "boxes"
    objects = data.get("objects")
    if isinstance(objects, list) and all(isinstance(o, dict) and "shape" in o for o in objects):
        return "world"
    raise InputError(f"a row's context is neither a world scene graph nor captions + boxes (keys {sorted(data)})")


@dataclass(frozen=True)
class RowContext:
    kind: str
    data: dict | None = None

    @classmethod
    def decode(cls, value: str | dict | None) -> RowContext:
        """From the `scene` column (JSON text or null) or an already parsed dict."""
        if value is None or value == "":
            return NO_CONTEXT
        data = json.loads(value) if isinstance(value, str) else value
        return cls(kind_of(data), data if data else None)

    @classmethod
    def boxes(cls, instances: list[dict], captions: list[str] | None = None) -> RowContext:
        return cls("boxes", {"captions": list(captions or []), "instances": list(instances)})

    def encode(self) -> str | None:
        """For the `scene` column: canonical JSON (sorted keys, so every engine writes the same bytes) or null."""
        return json.dumps(self.data, sort_keys=True) if self.data else None

    def __bool__(self) -> bool:
        return self.kind != "none"

    @property
    def is_world(self) -> bool:
        return self.kind == "world"

    @property
    def is_boxes(self) -> bool:
        return self.kind == "boxes"

    def scene_graph(self):
        """The world SceneGraph (world kind only)."""
        from .world.scene import SceneGraph

        if not self.is_world:
            raise InputError(f"a {self.kind} context has no world scene graph")
        return SceneGraph.from_dict(self.data)

    @property
    def instances(self) -> list[dict]:
        return list(self.data.get("instances", [])) if self.is_boxes else []

    @property
    def categories(self) -> set[str]:
        return {str(i["category"]).lower() for i in self.instances}

    def captions(self, caption: str) -> list[str]:
        """The human captions of a boxes context, else the row's own caption."""
        return list(self.data.get("captions") or [caption]) if self.is_boxes else [caption]

    def words(self) -> list[str]:
        """The context's own vocabulary: world objects' attribute words, or box categories."""
        if self.is_world:
            return [str(o.get(k, "")) for o in self.data["objects"] for k in ("shape", "colour", "size", "texture")]
        return [str(i.get("category", "")) for i in self.instances]


NO_CONTEXT = RowContext("none")
