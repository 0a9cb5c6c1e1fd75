"""Train the demo model on synthetic harmony conversations (CPU, PyTorch; see model.py for why).

    nice -n 10 python -m models.demo_train.train --run /work/demo_run --minutes 45

Writes RUN/tokenizer.json first (learned from the start of the training stream), then
RUN/model.pt (state dict + config) every few minutes and at the end, and RUN/train.log.
Reproducible from --seed: the data stream, the tokenizer and the initial weights all come from it.
With --minutes the learning-rate schedule follows the clock (how many steps fit depends on the
machine's load); pass --steps N for a bit-for-bit repeatable run.
The loss covers only what the assistant writes (analysis + final), not the prompt.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import re
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from models.demo_train import bpe
from models.demo_train.conversations import (TRAIN_SEED, encode_example, heldout_examples, heldout_long_multiplications,
                                             make_example, make_tool_example, python_descriptions, random_date,
                                             tool_turn)
from models.demo_train.dialog import Dialog, encode_dialog
from models.demo_train.from_folder import folder_state
from models.demo_train.model import DemoConfig, DemoModel
from models.demo_train.tasks import GENERATORS

SPECIAL = re.compile(r"<\|[a-z_0-9]+\|>")
# High effort is where the quality bar is measured and its traces are the longest to learn.
EFFORT_WEIGHTS = {"low": 0.15, "medium": 0.15, "high": 0.7}
# Harder kinds come up more often; weekdays were learned early in the first runs. Long
# multiplications (two multi-digit numbers) are what the model must decline without the tool.
KIND_WEIGHTS = {"addition": 1.3, "multiplication": 1.2, "letters": 1.0, "sorting": 1.5, "units": 0.8, "weekday": 0.4,
                "long multiplication": 0.0}
# Conversations with the python tool: half are long multiplications (which go to the tool), half
# the six kinds it works out in its head all the same.
TOOL_KIND_WEIGHTS = {"addition": 0.5, "multiplication": 0.5, "letters": 0.5, "sorting": 0.5, "units": 0.5,
                     "weekday": 0.5, "long multiplication": 3.0}
# How the python description is picked: harmony's words (what the engine renders today) most often.
DESCRIPTION_WEIGHTS = (0.7, 0.3)
VOCAB_SIZE = 768
NUM_MERGES = 480
TOKENS_PER_ROW = 100  # about the mean number of trained (completion) tokens in a conversation


def example_groups(seed: int, size: int, kind_weights: dict[str, float] | None = None,
                   effort_weights: dict[str, float] | None = None, tool_share: float = 0.0,
                   history_prob: float = 0.2, max_history: int = 1):
    """Endless lists of `size` training examples that share one effort, one date and whether the
    python tool is offered (with which description), so a batch cut from a list shares its whole
    system message (see DemoModel.forward's prefix). Never a held-out question."""
    rng = random.Random(seed)
    held = {ex.task.question for ex in heldout_examples() + heldout_long_multiplications()}
    efforts, effort_weights = zip(*(effort_weights or EFFORT_WEIGHTS).items())
    kinds, kind_weights = zip(*(kind_weights or KIND_WEIGHTS).items())
    tool_kinds, tool_weights = zip(*TOOL_KIND_WEIGHTS.items())
    descriptions = python_descriptions()
    while True:
        effort = rng.choices(efforts, effort_weights)[0]
        date = random_date(rng) if rng.random() < 0.9 else None
        # rng is only drawn for the tool when it can be offered, so tool_share=0 is the old stream.
        description = rng.choices(descriptions, DESCRIPTION_WEIGHTS)[0] if tool_share and rng.random() < tool_share else None
        group = []
        while len(group) < size:
            if description is None:
                ex = make_example(rng, kind=rng.choices(kinds, kind_weights)[0], effort=effort,
                                  history_prob=history_prob, max_history=max_history)
            else:
                ex = make_tool_example(rng, rng.choices(tool_kinds, tool_weights)[0], effort, description,
                                       date or random_date(rng), history_prob=history_prob, max_history=max_history)
            if ex.task.question not in held:
                group.append(dataclasses.replace(ex, date=date) if description is None else ex)
        if description is not None:  # the engine always writes a date; the group shares this one
            group = [dataclasses.replace(ex, date=group[0].date) for ex in group]
        yield group


def example_stream(seed: int, kind_weights: dict[str, float] | None = None, size: int = 64, **mix):
    """The same examples one at a time."""
    for group in example_groups(seed, size, kind_weights, **mix):
        yield from group


def _with_changes(defaults: dict[str, float], text: str, noun: str) -> dict[str, float]:
    """"a=1.4,b=2" -> a copy of `defaults` with those entries changed (each name must be known)."""
    weights = dict(defaults)
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name.strip() not in weights:
            raise argparse.ArgumentTypeError(f"unknown {noun} {name!r}; {noun}s are {', '.join(weights)}")
        weights[name.strip()] = float(value)
    return weights


def parse_weights(text: str) -> dict[str, float]:
    """"letters=1.4,sorting=1.5" -> KIND_WEIGHTS with those two changed."""
    return _with_changes(KIND_WEIGHTS, text, "kind")


def parse_efforts(text: str) -> dict[str, float]:
    """"medium=0.4" -> EFFORT_WEIGHTS with that one changed."""
    return _with_changes(EFFORT_WEIGHTS, text, "effort")


def build_tokenizer(run: Path, seed: int, kind_weights: dict[str, float] | None = None):
    """Learn the BPE from the first 4000 training conversations (special tokens cut out)."""
    stream = example_stream(seed, kind_weights)
    texts = []
    for _ in range(4000):
        ex = next(stream)
        texts += [p for p in SPECIAL.split(ex.prompt + ex.completion) if p]
    bpe.write_tokenizer(texts, run, VOCAB_SIZE, NUM_MERGES)
    return bpe.tiktoken_encoding(run / "tokenizer.json")


def dialog_groups(seed: int, size: int, source: str, effort_weights: dict[str, float] | None = None,
                  python_share: float = 0.3, count_tokens=None):
    """Endless lists of `size` Dialogs of one source ("documents" or "json") that share their
    system message (effort, date, which tools): documents chats offer the browser (and the python
    tool in `python_share` of the groups), JSON ones the python tool in `python_share`."""
    from models.demo_train.browse import documents_dialogs, scratch

    rng = random.Random(seed)
    efforts, weights = zip(*(effort_weights or EFFORT_WEIGHTS).items())
    held = {ex.task.question for ex in heldout_examples() + heldout_long_multiplications()}
    while True:
        effort = rng.choices(efforts, weights)[0]
        date = random_date(rng)
        python = rng.random() < python_share
        group = []
        if source == "documents":
            with scratch() as tmp:
                while len(group) < size:
                    group += documents_dialogs(rng, effort, date, Path(tmp) / str(len(group)), 8, python,
                                               count_tokens=count_tokens)
                    # With the browser on, the other kinds are still worked out in the head (and
                    # long multiplications sent to python when it is on): 3 in every 11.
                    group += [head_dialog(rng, effort, date, python) for _ in range(3)]
        else:
            from models.demo_train.json_answers import json_dialog

            kinds, kind_weights = zip(*((k, w) for k, w in KIND_WEIGHTS.items() if k in GENERATORS))
            while len(group) < size:
                task = GENERATORS[rng.choices(kinds, kind_weights)[0]](rng, effort)
                if task.question not in held:
                    group.append(json_dialog(rng, task, effort, date, python=python))
        yield group[:size]


def head_dialog(rng: random.Random, effort: str, date: str, python: bool) -> Dialog:
    """A question of the six kinds (or, with python, a long multiplication) in a chat that offers the
    browser: answered as without it (conversations.tool_turn), sometimes after earlier turns."""
    from models.demo_train.browse import SOURCE

    kinds = sorted(GENERATORS) + (["long multiplication"] if python else [])
    held = _held()
    while True:
        ex = make_tool_example(rng, rng.choice(kinds), effort, python_descriptions()[0] if python else "", date,
                               history_prob=0.3, max_history=4)
        if ex.task.question not in held:
            break
    turn = tool_turn(ex) if python else [({"role": "assistant", "channel": "analysis", "content": ex.task.analysis}, True),
                                         ({"role": "assistant", "channel": "final", "content": ex.task.final}, True)]
    return Dialog(ex.task.kind, effort, date, tuple(ex.messages()), tuple(turn), python=python, browser=(SOURCE,),
                  answer=ex.task.answer)


_HELD: set[str] = set()


def _held() -> set[str]:
    if not _HELD:
        _HELD.update(ex.task.question for ex in heldout_examples() + heldout_long_multiplications())
    return _HELD


def mixed_groups(enc, seed: int, size: int, kind_weights=None, docs_share: float = 0.0, json_share: float = 0.0,
                 **mix):
    """(source, group of encoded (system, ids, trained) rows): the old conversations, and with docs_share /
    json_share of the groups, documents chats and JSON answers (0 and 0: exactly the old stream)."""
    old = example_groups(seed, size, kind_weights, **mix)
    count_tokens = lambda s: len(enc.encode_ordinary(s))  # noqa: E731 - the model's own tokens size the views
    docs = dialog_groups(seed + 7, size, "documents", mix.get("effort_weights"), count_tokens=count_tokens)
    answers = dialog_groups(seed + 11, size, "json", mix.get("effort_weights"))
    pick = random.Random(seed + 3)
    while True:
        r = pick.random() if docs_share or json_share else 1.0
        if r < docs_share:
            yield "documents", [encode_dialog(enc, d) for d in next(docs)]
        elif r < docs_share + json_share:
            yield "json", [encode_dialog(enc, d) for d in next(answers)]
        else:
            yield "old", [encode_example(enc, ex) for ex in next(old)]


def batches(enc, seed: int, batch_size: int, group: int = 8, kind_weights: dict[str, float] | None = None, **mix):
    """(prefix, x, y) batches: prefix [1, P] is the system message every row shares, x [B, L] the
    rest of each conversation (right-padded), y [B, L] the next-token targets, -100 where no loss.
    Length-bucketed: draw batch_size*group examples, sort by length, cut, shuffle."""
    rng = random.Random(seed + 1)
    for source, encoded in mixed_groups(enc, seed, batch_size * group, kind_weights, **mix):
        system = encoded[0][0]
        assert all(s == system for s, _, _ in encoded)  # the group shares its system message
        items = sorted(((ids, trained) for _, ids, trained in encoded), key=lambda t: len(t[0]))
        prefix = torch.tensor([system])
        # Documents chats are 5x longer: half the rows a step, twice the steps (more updates for
        # the new skill for the same compute; a step's time stays near the others').
        size = max(1, batch_size // 2) if source == "documents" else batch_size
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        rng.shuffle(chunks)
        for chunk in chunks:
            length = max(len(ids) for ids, _ in chunk)
            x = torch.zeros(len(chunk), length - 1, dtype=torch.long)
            y = torch.full((len(chunk), length - 1), -100, dtype=torch.long)  # -100: no loss
            for row, (ids, trained) in enumerate(chunk):
                t = torch.tensor(ids)
                x[row, :len(ids) - 1] = t[:-1]
                # Predict only what the model writes (not the prompt, not a tool's result).
                y[row, :len(ids) - 1] = torch.where(torch.tensor(trained[1:]), t[1:], -100)
            yield prefix, x, y


def save(model: DemoModel, run: Path, step: int, loss: float) -> None:
    tmp = run / "model.pt.tmp"
    torch.save({"config": dataclasses.asdict(model.cfg), "state": model.state_dict(),
                "step": step, "loss": loss, "quantized": model.layers[0].mlp.quantize}, tmp)
    tmp.replace(run / "model.pt")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="folder for the tokenizer, checkpoints and log")
    ap.add_argument("--seed", type=int, default=TRAIN_SEED)
    ap.add_argument("--minutes", type=float, default=45.0, help="time budget; the schedule follows the clock")
    ap.add_argument("--steps", type=int, default=0, help="fixed step count instead (overrides --minutes)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--qat-from", type=float, default=0.7, help="fraction of training after which experts train MXFP4-rounded")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--window", type=int, default=256,
                    help="sliding-window size of the even layers (gpt-oss-20b: 128); 256 lets them "
                         "see the question from most of a high-effort trace")
    ap.add_argument("--kind-weights", type=parse_weights, default=dict(KIND_WEIGHTS),
                    help="how often each kind comes up, e.g. letters=1.4,sorting=1.5 (others keep their default)")
    ap.add_argument("--resume", type=Path, help="start from this model.pt (same sizes) with a fresh schedule")
    ap.add_argument("--init-folder", type=Path,
                    help="fine-tune: start from this exported model folder (e.g. models/demo) and its tokenizer")
    ap.add_argument("--tool-share", type=float, default=0.0,
                    help="fraction of batches whose conversations offer the python tool")
    ap.add_argument("--threads", type=int, default=2,
                    help="torch threads; 1 on a machine others are using (2 threads on 2 busy cores ran 3-5x slower)")
    ap.add_argument("--warmup", type=int, default=100, help="steps of linear learning-rate warmup")
    ap.add_argument("--effort-weights", type=parse_efforts, default=dict(EFFORT_WEIGHTS),
                    help="e.g. low=0.15,medium=0.4,high=0.45")
    ap.add_argument("--docs-share", type=float, default=0.0, help="share of groups that are documents chats (browser)")
    ap.add_argument("--json-share", type=float, default=0.0, help="share of groups that answer in JSON to a format")
    ap.add_argument("--history-prob", type=float, default=0.2, help="share of conversations with earlier turns")
    ap.add_argument("--max-history", type=int, default=1,
                    help="earlier turns a conversation carries, 1..N (long chats: the 5th question as right as the 1st)")
    args = ap.parse_args(argv)

    args.run.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    if args.resume or args.init_folder:
        # Keep the tokenizer the weights were trained with; --seed then only picks new data.
        source = args.init_folder or args.resume.parent
        if source.resolve() != args.run.resolve():
            shutil.copyfile(source / "tokenizer.json", args.run / "tokenizer.json")
        enc = bpe.tiktoken_encoding(args.run / "tokenizer.json")
    else:
        enc = build_tokenizer(args.run, args.seed, args.kind_weights)
    cfg = DemoConfig(vocab_size=VOCAB_SIZE, hidden_size=args.hidden, intermediate_size=args.hidden,
                     num_hidden_layers=args.layers, num_local_experts=args.experts, sliding_window=args.window,
                     num_attention_heads=args.hidden // 32, num_key_value_heads=max(1, args.hidden // 64))
    model = DemoModel(cfg)
    if args.resume:
        saved = torch.load(args.resume, map_location="cpu", weights_only=False)
        model.load_state_dict(saved["state"])
    elif args.init_folder:
        model.load_state_dict(folder_state(args.init_folder, cfg))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98))
    log = open(args.run / "train.log", "a")
    data = batches(enc, args.seed, args.batch, kind_weights=args.kind_weights,
                   effort_weights=args.effort_weights, tool_share=args.tool_share,
                   history_prob=args.history_prob, max_history=args.max_history,
                   docs_share=args.docs_share, json_share=args.json_share)
    warmup = args.warmup
    start = time.time()
    last_save = start
    smooth, sums = None, (0.0, 0)
    step = 0

    def progress() -> float:
        # With --steps the schedule follows steps (exactly reproducible); otherwise the clock,
        # since this machine is shared and a step's time varies by 3x.
        if args.steps:
            return step / args.steps
        return (time.time() - start) / (args.minutes * 60)

    while progress() < 1.0:
        if progress() >= args.qat_from and not model.layers[0].mlp.quantize:
            model.set_quantize(True)
            print(f"step {step}: experts now fake-quantized to MXFP4", file=log, flush=True)
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress())))
        for group in opt.param_groups:
            group["lr"] = lr
        prefix, x, y = next(data)
        select = y != -100
        total = F.cross_entropy(model(x, select, prefix), y[select], reduction="sum")
        # Every trained token weighs the same in every step: a batch shares one effort, and a
        # per-batch mean would give a low-effort batch's few tokens as much pull as a high-effort
        # batch's many (so the short, unworked answers would count several times more).
        opt.zero_grad()
        (total / (args.batch * TOKENS_PER_ROW)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        # Logged loss: a running per-token mean (sum and count decayed alike).
        sums = (0.95 * sums[0] + total.item(), 0.95 * sums[1] + int(select.sum()))
        smooth = sums[0] / sums[1]
        step += 1
        if step % 10 == 0:
            print(f"step {step} ({100 * progress():.0f}%) loss {smooth:.4f} lr {lr:.2e} {time.time() - start:.0f}s", file=log, flush=True)
        if time.time() - last_save > 180:
            save(model, args.run, step, smooth)
            last_save = time.time()
    save(model, args.run, step, smooth)
    print(f"done: {step} steps, loss {smooth:.4f}, {time.time() - start:.0f}s", file=log, flush=True)
    (args.run / "train_args.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=1))


if __name__ == "__main__":
    main()
