"""The model picker's logic (no widgets): which models are on this computer, each one's memory plan
in one line, and switching, unloading and adding folders while the app runs.

The list: the shipped demo, gpt-oss-20b/120b where installed (downloaded by the app, in the Hugging
Face cache, bundled, or the folder chosen on the setup page) and the folders the user added (kept in
the settings table under "model_folders"). A folder that is gone or broken stays listed with its
one sentence from app.model_manager.check_folder, and is never loaded.

Switching never leaves the user without the working model: the new folder is checked first (config,
headers, tokenizer, memory plan, all without loading). When memory holds both models the new one
loads beside the old, which is dropped only once the new one is in (EngineWorker.load_beside); when
it doesn't, the user is told first that the old one is unloaded to make room, and it is loaded
again if the new one fails. The local API follows (app/api_server.py attaches the loaded model).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.model_manager import check_folder, default_download_folder, hf_cache_folders
from app.paths import models_dir
from app.qt_compat import emit
from app.store import StoreError
from models.registry import DEMO, GPT_OSS_20B, GPT_OSS_120B, bundled_folders, demo_folder, label_for_folder

log = logging.getLogger(__name__)
GB = 10**9
ADDED_KEY = "model_folders"       # the settings-table row listing the folders the user added
BUSY = "busy"                     # switch_to(): an answer is being written (the window asks first)


@dataclass(frozen=True)
class ModelChoice:
    """One row of the picker."""

    folder: str
    name: str
    problem: str = ""      # one sentence when the folder can't be used ('' when it can)
    plan: str = ""         # the memory plan in one line (or why it won't fit)
    fits: bool = False     # the plan fits this machine at the context in use
    peak_bytes: int = 0    # the plan's predicted peak
    added: bool = False    # a folder the user added (it can be removed from the list)

    @property
    def usable(self) -> bool:
        return not self.problem and self.fits


def same_folder(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except OSError:
        return str(a) == str(b)


_checked: dict[str, tuple[tuple, str | None]] = {}   # folder -> (what its files looked like, check_folder's answer)


def folder_signature(folder: str | Path) -> tuple:
    """Name, size and time of every file in `folder` (a listing, no reading): a changed, added or
    removed file changes it."""
    try:
        with os.scandir(folder) as entries:
            return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries))
    except OSError as e:
        return ("unreadable", type(e).__name__)


def checked(folder: str | Path) -> str | None:
    """check_folder(folder), remembered while the folder's files stay as they were: the check reads the
    whole tokenizer (a second or two for gpt-oss's), and the list is drawn again often."""
    key, signature = str(folder), folder_signature(folder)
    seen = _checked.get(key)
    if seen is None or seen[0] != signature:
        seen = _checked[key] = (signature, check_folder(folder))
    return seen[1]


def plan_line(folder: str | Path, context_length: int, budget: int | None) -> tuple[bool, int, str]:
    """(fits, peak bytes, one line) from engine.memory's plan for `folder` at the context in use
    (at most the model's own). Reads config.json and the headers only."""
    from engine.memory import plan_footprint, read_footprint

    if budget is None:
        return True, 0, "Memory plan: measuring this computer's memory…"
    fp = read_footprint(folder)
    p = plan_footprint(fp, min(int(context_length), fp.max_context), budget)
    if not p.fits:
        return False, p.peak_bytes, f"Won't fit: {p.reason}"
    slots = p.policy.expert_slots
    how = ("all experts in memory" if slots is None else
           f"{slots} of {fp.num_experts} experts per layer in memory, the rest streamed from disk (slower)")
    size = f"{p.peak_bytes / GB:.1f} GB" if p.peak_bytes >= GB else f"{p.peak_bytes / 1e6:.0f} MB"
    return True, p.peak_bytes, f"Fits: about {size}, {how}, up to {p.context_cap:,} tokens of context"


class ModelPicker(QObject):
    """The window's model list and switches. Signals say what the window should show."""

    changed = Signal()            # the list or the model in use changed: show it again
    switching = Signal(str)       # the name of the model being loaded
    notice = Signal(str)          # one sentence: a switch failed, was refused, or the old model came back
    unloaded = Signal()           # no model is loaded now
    _request_switch = Signal(str, int)
    _request_unload = Signal()
    _budget_known = Signal("qint64")

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.c = controller
        self.budget: int | None = None      # bytes MLX may use here (measured on the engine thread)
        self.memory_in_use = 0              # what the loaded model holds now (the worker reports it)
        self.pending = ""                   # the folder being switched to
        self._fallback = ""                 # the folder to load again if the pending one fails
        worker = controller.worker
        self._request_switch.connect(worker.load_beside)
        self._request_unload.connect(worker.unload)
        worker.switch_failed.connect(self._switch_failed)
        worker.unloaded.connect(self._on_unloaded)
        controller.memory_changed.connect(self._on_memory)
        controller.model_ready.connect(self._on_ready)
        controller.model_failed.connect(self._on_failed)
        self._budget_known.connect(self._on_budget)
        self._measuring = False

    def ensure_budget(self) -> None:
        """Measure the memory budget once, when the list is first shown (MLX is imported for it)."""
        if self.budget is None and not self._measuring:
            self._measuring = True
            self.c.worker.post(self._measure_budget)

    # -- the list ------------------------------------------------------------------------
    def added_folders(self) -> list[str]:
        try:
            saved = self.c.store.get_setting(ADDED_KEY, []) or []
        except StoreError:
            return []
        return [f for f in saved if isinstance(f, str) and f] if isinstance(saved, list) else []

    def _save_added(self, folders: list[str]) -> str:
        try:
            self.c.store.set_setting(ADDED_KEY, folders)
        except StoreError as e:
            return f"The list of model folders couldn't be saved ({e}); it is kept until the app quits."
        return ""

    @staticmethod
    def found_folders() -> list[str]:
        """The models the app finds by itself: the demo, its downloads, the Hugging Face cache, bundled ones."""
        found = [default_download_folder(), models_dir() / GPT_OSS_120B.key, *hf_cache_folders(GPT_OSS_20B.repo_id),
                 *hf_cache_folders(GPT_OSS_120B.repo_id), *bundled_folders()]
        return [str(demo_folder())] + [str(f) for f in found if f.is_dir()]

    def installed_folders(self) -> list[tuple[str, bool]]:
        """(folder, added by the user) for every model on this computer, the demo first."""
        out: list[tuple[str, bool]] = [(f, False) for f in self.found_folders()]
        if self.c.settings.model_folder:
            out.append((self.c.settings.model_folder, False))
        if self.c.folder:
            out.append((self.c.folder, False))
        out += [(f, True) for f in self.added_folders()]
        unique: list[tuple[str, bool]] = []
        for folder, added in out:
            same = next((i for i, (f, _) in enumerate(unique) if same_folder(f, folder)), None)
            if same is None:
                unique.append((folder, added))
            elif added:   # an added folder can be removed even when it is also the chosen one
                unique[same] = (unique[same][0], True)
        return unique

    def choices(self) -> list[ModelChoice]:
        return [self.choice(folder, added) for folder, added in self.installed_folders()]

    def choice(self, folder: str, added: bool = False) -> ModelChoice:
        """The row for `folder`: its name, and its plan or the one sentence saying why it can't be used."""
        is_demo = same_folder(folder, demo_folder())
        name = DEMO.label if is_demo else (label_for_folder(folder) or Path(folder).name or folder)
        problem = checked(folder)
        if problem:
            return ModelChoice(folder, name, problem=problem, added=added)
        try:
            fits, peak, plan = plan_line(folder, self.c.settings.context_length, self.budget)
        except Exception as e:   # a folder the checks passed but the planner can't read: say so, never raise
            log.warning("memory plan of %s failed: %s", folder, e)
            return ModelChoice(folder, name, problem=f"The memory plan of {folder} could not be worked out ({e}); "
                                                     "choose another folder.", added=added)
        return ModelChoice(folder, name, plan=plan, fits=fits, peak_bytes=peak, added=added)

    def is_current(self, folder: str) -> bool:
        return bool(self.c.folder) and self.c.ready and same_folder(folder, self.c.folder)

    def twenty_b_installed(self) -> bool:
        return any(label_for_folder(f) == GPT_OSS_20B.label and not checked(f)
                   for f, _ in self.installed_folders())

    # -- adding and removing folders -----------------------------------------------------
    def add_folder(self, folder: str) -> str:
        """Remember `folder` in the list; '' when added, else the one sentence why not (nothing added)."""
        problem = checked(folder)
        if problem:
            return problem
        folders = self.added_folders()
        if not any(same_folder(f, folder) for f in folders):
            problem = self._save_added([*folders, str(Path(folder).expanduser())])
        emit(self.changed)
        return problem

    def remove_folder(self, folder: str) -> str:
        """Take an added folder off the list (its files stay); never the model in use."""
        if self.is_current(folder):
            return "This model is in use; switch to another one or unload it first."
        problem = self._save_added([f for f in self.added_folders() if not same_folder(f, folder)])
        emit(self.changed)
        return problem

    # -- switching -----------------------------------------------------------------------
    def room_for_both(self, choice: ModelChoice) -> bool:
        """Memory holds the new model beside the one in use (then the switch has no gap)."""
        if not self.c.ready or self.budget is None:
            return True
        held = self.memory_in_use or self.choice(self.c.folder).peak_bytes
        return held + choice.peak_bytes <= self.budget

    def what_happens(self, choice: ModelChoice) -> str:
        """The sentence the window shows before a switch that must unload the model in use first."""
        if self.room_for_both(choice):
            return ""
        return (f"There isn't memory for both models, so {self.c.model_name} is unloaded first to make room for "
                f"{choice.name}; if {choice.name} can't be loaded, {self.c.model_name} is loaded again.")

    def switch_to(self, folder: str) -> str:
        """Start loading `folder` in place of the model in use. '' when started; BUSY when an answer is
        being written (stop it first, or ask); else one sentence why not (the model in use stays)."""
        if self.pending:
            return "Another model is being loaded; wait for it to finish."
        choice = self.choice(folder)
        if choice.problem:
            return choice.problem
        if not choice.fits:
            return choice.plan
        if self.is_current(folder):
            return ""
        if self.c.busy:
            return BUSY
        self.pending = folder
        emit(self.switching, choice.name)
        if self.c.ready and self.room_for_both(choice):
            self.c.ready = False                  # the composer waits; what the user typed stays in it
            emit(self.c.busy_changed, False)
            emit(self._request_switch, folder, int(self.c.settings.context_length))
        else:
            self._fallback = self.c.folder if self.c.ready else ""
            self.c.load_model(folder)             # the model in use (if any) goes first
        return ""

    def stop_answers(self) -> None:
        """Stop every answer being written (what they wrote is kept); busy_changed(False) follows."""
        for turn in list(self.c.turns.values()):
            turn.stop()

    def unload(self) -> None:
        """Drop the model in use and free its memory; the window says how to load one."""
        if self.c.busy:
            self.stop_answers()
        self.c.ready = False
        emit(self._request_unload)

    # -- the engine's answers ------------------------------------------------------------
    def _measure_budget(self) -> None:
        """Engine thread (MLX is touched there only): the bytes MLX may use on this machine."""
        from engine.memory import device_budget
        emit(self._budget_known, device_budget())

    def _on_budget(self, budget: int) -> None:
        if self.budget is None:    # a test may have set its own
            self.budget = int(budget)
        emit(self.changed)

    def _on_memory(self, n: int) -> None:
        self.memory_in_use = int(n) if self.c.ready or self.pending else 0

    def _on_ready(self, _name: str) -> None:
        if self.pending and same_folder(self.pending, self.c.folder):
            self._remember(self.pending)
        self._keep_listed(self.c.folder)
        self.pending = self._fallback = ""
        emit(self.changed)

    def _remember(self, folder: str) -> None:
        """The model in use is the one loaded at the next launch."""
        self.c.settings.model_folder = folder
        try:
            self.c.settings.save(self.c.store)
        except StoreError:
            pass   # it is used for this session; the next launch loads the last one saved

    def _keep_listed(self, folder: str) -> None:
        """A folder chosen on the setup page stays in the list after a switch to another model."""
        known = [*self.found_folders(), *self.added_folders()]
        if folder and not any(same_folder(folder, f) for f in known):
            self._save_added([*self.added_folders(), folder])

    @property
    def recovering(self) -> bool:
        """The new model failed after the old one was unloaded for it: the old one is being loaded again."""
        return bool(self._fallback)

    def _switch_failed(self, message: str) -> None:
        """load_beside failed: the old model was never unloaded."""
        name = self.choice(self.pending).name if self.pending else "The model"
        self.pending = ""
        self.c.ready = True
        emit(self.c.busy_changed, self.c.busy)
        emit(self.notice, f"{name} could not be loaded, so {self.c.model_name} is still in use: {message}")
        emit(self.changed)

    def _on_failed(self, message: str) -> None:
        old, failed = self._fallback, self.pending
        self.pending = self._fallback = ""
        if failed and old:
            name = self.choice(failed).name
            emit(self.notice, f"{name} could not be loaded ({message.rstrip('.')}), so the model in use before "
                              "is loaded again.")
            self.pending = old
            self.c.load_model(old)
        elif failed:
            emit(self.notice, message)
        emit(self.changed)

    def _on_unloaded(self) -> None:
        if self.pending:   # the load that follows is load_model's own close: not an unload
            return
        c = self.c
        c.ready, c.model_name, c.is_demo, c._folder, c.context_lengths = False, "", False, "", ()
        self.memory_in_use = 0
        emit(self.unloaded)
        emit(self.changed)
