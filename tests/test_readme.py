"""The README's Python example, run as written."""
import contextlib
import io
import re
from pathlib import Path

import vidsearch

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch, tiny_model):
    block = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    assert "index.add" in block and "index.search" in block and len(block.strip().splitlines()) <= 6
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample_media").symlink_to(ROOT / "sample_media")
    # The example opens ./vidsearch-index with the model it was created with; create it with the test model
    # (the default model's weights cannot be downloaded here).
    (tmp_path / "empty").mkdir()
    vidsearch.Index("vidsearch-index", model=tiny_model).add(["empty"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert 1 <= len(lines) <= 5 and all("sample_media" in line for line in lines)
    assert vidsearch.Index("vidsearch-index").stats().sources == 9  # 3 videos and 6 photos
