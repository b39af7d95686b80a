"""Stage-2 task builders. TASKS is the only name -> class table for builders; YAML names them by these keys."""

from curate.tasks.base import Example, Skip, TaskBuilder
from curate.tasks.caption import Caption
from curate.tasks.grounding import GroundedCaption, Grounding, RefGrounding
from curate.tasks.ocr import Ocr
from curate.tasks.text import Text
from curate.tasks.vqa import Vqa

TASKS: dict[str, type] = {t.name: t for t in (Caption, Vqa, Grounding, RefGrounding, GroundedCaption, Ocr, Text)}

__all__ = ["TASKS", "Example", "Skip", "TaskBuilder"]
