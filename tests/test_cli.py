import subprocess
import sys

from helpers import REPO

from curate.__main__ import main


def test_unknown_filter_exits_2_with_the_valid_names(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninput: {url_list: {path: x.parquet}}\nfilters: [{clip_scroe: {}}]\n")
    assert main(["filter", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown filter 'clip_scroe'" in err and "known: caption_text, clip_score" in err


def test_missing_clip_weights_fail_before_any_work(tmp_path, capsys):
    urls = tmp_path / "urls.jsonl"
    urls.write_text('{"url": "a.jpg", "caption": "a cat"}\n')
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"name: w\ninput: {{url_list: {{path: {urls}}}}}\n"
        "filters: [{clip_score: {model: ViT-B-32, pretrained: openai}}]\n"
    )
    assert main(["filter", str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert "not available offline" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # failed before creating anything


def test_help_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "curate", "--help"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0
    for command in ("filter", "demo-data", "train-clip"):
        assert command in result.stdout


def test_validate_names_a_filter_output_instead_of_failing_every_pair(tmp_path, capsys):
    (tmp_path / "f" / "shards").mkdir(parents=True)
    (tmp_path / "f" / "run.json").write_text('{"command": "filter"}')
    assert main(["validate", str(tmp_path / "f")]) == 2
    assert "filter output" in capsys.readouterr().err
