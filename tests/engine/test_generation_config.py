"""A model folder's generation_config.json decides greedy decoding in the app and the terminal chat."""
import json

from app.engine_bridge import LoadedEngine
from engine.generation_config import prefers_greedy
from models.registry import demo_folder


def test_do_sample_false_means_greedy_and_anything_else_means_the_users_settings(tmp_path):
    cases = {"greedy": {"do_sample": False}, "sampled": {"do_sample": True, "temperature": 1.0},
             "silent": {"eos_token_id": 2}, "odd": ["not", "a", "dict"]}
    for name, body in cases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "generation_config.json").write_text(json.dumps(body))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "generation_config.json").write_text("{not json")
    (tmp_path / "missing").mkdir()
    assert [prefers_greedy(tmp_path / n) for n in ("greedy", "sampled", "silent", "odd", "broken", "missing")] == \
        [True, False, False, False, False, False]


def test_the_shipped_demo_model_asks_for_greedy_decoding():
    assert prefers_greedy(demo_folder())


def test_a_greedy_model_ignores_the_temperature_setting_and_others_keep_it():
    made = []
    make = lambda t, p: made.append((t, p))  # noqa: E731
    LoadedEngine(None, "demo", greedy=True, make_sampling=make).sampling(1.0, 0.9)
    LoadedEngine(None, "gpt-oss", make_sampling=make).sampling(1.0, 0.9)
    assert made == [(0.0, 0.9), (1.0, 0.9)]
