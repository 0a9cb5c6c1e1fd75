"""A model folder's generation_config.json decides greedy decoding in the app and the terminal chat."""
import json

from engine.generation_config import prefers_greedy, sampling_defaults
from engine.session import ChatSession
from engine.generate import SamplingParams
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


def session(**kw):
    """A ChatSession with no model: sampling() is all these tests ask of it."""
    s = ChatSession.__new__(ChatSession)
    s.defaults, s.greedy = kw.get("defaults", SamplingParams()), kw.get("greedy", False)
    return s


def test_a_greedy_model_ignores_the_temperature_setting_and_others_keep_it():
    assert session(greedy=True).sampling(1.0, 0.9, seed=7) == SamplingParams(0.0, 1.0, 0.0, 7)
    assert session().sampling(0.7, 0.9) == SamplingParams(0.7, 0.9)


def test_unset_settings_take_the_folders_defaults(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps({"temperature": 0.6, "top_p": 0.95, "top_k": 5}))
    defaults = SamplingParams(**sampling_defaults(tmp_path))
    assert session(defaults=defaults).sampling() == SamplingParams(0.6, 0.95)
    assert session(defaults=defaults).sampling(temperature=1.0).top_p == 0.95
    (tmp_path / "generation_config.json").write_text(json.dumps({"temperature": "hot", "top_p": 7}))
    assert sampling_defaults(tmp_path) == {}
