"""LaTeX math as Qt rich text: symbols as Unicode, ^ and _ as <sup>/<sub>, fractions, roots, accents.

Why not images (matplotlib's mathtext, a TeX install): rich text follows the label's font, size and
colour (dark mode), wraps, and can be selected and copied; and it needs no 40 MB dependency. It covers
what chat answers write (Greek, operators, sums, fractions, roots, matrices as rows); a command it
does not know is shown as written, backslash included, so nothing is ever lost.
"""
from __future__ import annotations

import html
import re

GREEK = dict(alpha="α", beta="β", gamma="γ", delta="δ", epsilon="ϵ", varepsilon="ε", zeta="ζ", eta="η",
             theta="θ", vartheta="ϑ", iota="ι", kappa="κ", lambda_="λ", mu="μ", nu="ν", xi="ξ", pi="π",
             varpi="ϖ", rho="ρ", varrho="ϱ", sigma="σ", varsigma="ς", tau="τ", upsilon="υ", phi="ϕ",
             varphi="φ", chi="χ", psi="ψ", omega="ω", Gamma="Γ", Delta="Δ", Theta="Θ", Lambda="Λ", Xi="Ξ",
             Pi="Π", Sigma="Σ", Upsilon="Υ", Phi="Φ", Psi="Ψ", Omega="Ω")
GREEK["lambda"] = GREEK.pop("lambda_")
SYMBOLS = {
    "pm": "±", "mp": "∓", "times": "×", "div": "÷", "cdot": "·", "ast": "∗", "star": "⋆", "circ": "∘",
    "bullet": "∙", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "ne": "≠", "neq": "≠", "approx": "≈",
    "sim": "∼", "simeq": "≃", "cong": "≅", "equiv": "≡", "propto": "∝", "ll": "≪", "gg": "≫",
    "in": "∈", "notin": "∉", "ni": "∋", "subset": "⊂", "subseteq": "⊆", "supset": "⊃", "supseteq": "⊇",
    "cup": "∪", "cap": "∩", "setminus": "∖", "emptyset": "∅", "varnothing": "∅", "forall": "∀",
    "exists": "∃", "nexists": "∄", "neg": "¬", "lnot": "¬", "land": "∧", "wedge": "∧", "lor": "∨",
    "vee": "∨", "oplus": "⊕", "otimes": "⊗", "perp": "⊥", "parallel": "∥", "mid": "∣", "angle": "∠",
    "infty": "∞", "partial": "∂", "nabla": "∇", "hbar": "ℏ", "ell": "ℓ", "Re": "ℜ", "Im": "ℑ",
    "aleph": "ℵ", "prime": "′", "degree": "°", "dots": "…", "ldots": "…", "cdots": "⋯", "vdots": "⋮",
    "ddots": "⋱", "to": "→", "rightarrow": "→", "leftarrow": "←", "gets": "←", "leftrightarrow": "↔",
    "Rightarrow": "⇒", "Leftarrow": "⇐", "Leftrightarrow": "⇔", "implies": "⟹", "impliedby": "⟸",
    "iff": "⟺", "mapsto": "↦", "uparrow": "↑", "downarrow": "↓", "longrightarrow": "⟶",
    "sum": "∑", "prod": "∏", "coprod": "∐", "int": "∫", "iint": "∬", "iiint": "∭", "oint": "∮",
    "bigcup": "⋃", "bigcap": "⋂", "langle": "⟨", "rangle": "⟩", "lceil": "⌈", "rceil": "⌉",
    "lfloor": "⌊", "rfloor": "⌋", "lvert": "|", "rvert": "|", "vert": "|", "Vert": "‖", "|": "‖",
    "{": "{", "}": "}", "%": "%", "$": "$", "#": "#", "&": "&", "_": "_",
    "colon": ":", "top": "⊤", "bot": "⊥", "square": "□", "triangle": "△", "checkmark": "✓",
}
SPACES = {",": " ", ":": " ", ";": " ", "!": "", " ": " ", "quad": " ", "qquad": "  ", "enspace": " "}
FUNCTIONS = {"sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh",
             "tanh", "log", "ln", "lg", "exp", "lim", "liminf", "limsup", "max", "min", "sup", "inf", "det",
             "dim", "ker", "deg", "gcd", "arg", "Pr", "mod", "bmod", "tr", "rank"}
ACCENTS = {"hat": "\u0302", "widehat": "\u0302", "bar": "\u0304", "overline": "\u0305", "tilde": "\u0303",
           "widetilde": "\u0303", "vec": "\u20d7", "dot": "\u0307", "ddot": "\u0308"}
DOUBLE_STRUCK = {"N": "ℕ", "Z": "ℤ", "Q": "ℚ", "R": "ℝ", "C": "ℂ", "P": "ℙ", "E": "𝔼", "1": "𝟙"}
IGNORED = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "displaystyle",
           "textstyle", "limits", "nolimits", "mathit", "mathnormal", "boldsymbol"}
TEXT_COMMANDS = {"text", "textrm", "textit", "mathrm", "operatorname", "textnormal", "mbox", "mathsf", "texttt"}

TOKEN = re.compile(r"\\[A-Za-z]+\*?|\\.|[{}^_&]|\s+|[A-Za-z]+|.", re.S)


class _Parser:
    def __init__(self, src: str):
        self.toks = TOKEN.findall(src)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str | None:
        t = self.peek()
        self.i += t is not None
        return t

    def group_raw(self) -> str:
        """The source text of the next {...} group (or token), for \\text{...}."""
        if self.peek() != "{":
            return self.take() or ""
        self.take()
        depth, out = 1, []
        while (t := self.take()) is not None:
            depth += (t == "{") - (t == "}")
            if depth == 0:
                break
            out.append(t)
        return "".join(out)

    def sequence(self, stop: tuple[str, ...] = ()) -> str:
        out = []
        while (t := self.peek()) is not None and t not in stop:
            out.append(self.atom_with_scripts())
        return "".join(out)

    def atom_with_scripts(self) -> str:
        base = self.atom()
        while self.peek() in ("^", "_"):
            tag = "sup" if self.take() == "^" else "sub"
            base += f"<{tag}>{self.atom()}</{tag}>"
        return base

    def atom(self) -> str:
        t = self.take()
        if t is None:
            return ""
        if t == "{":
            inner = self.sequence(stop=("}",))
            self.take()
            return inner
        if t in ("}", "^", "_"):   # unbalanced: show it as written
            return html.escape(t)
        if t == "&":
            return "&nbsp;&nbsp;"
        if t.isspace():
            return " "
        if t.startswith("\\"):
            return self.command(t[1:])
        if t.isalpha():
            return f"<i>{html.escape(t)}</i>"
        if t in "=<>+−":
            return f" {html.escape(t)} " if t in "=<>" else html.escape(t)
        return html.escape(t)

    def command(self, name: str) -> str:
        if name == "\\":
            return "<br>"
        if name in GREEK:
            return f"<i>{GREEK[name]}</i>" if name[0].islower() else GREEK[name]
        if name in SYMBOLS:
            return SYMBOLS[name]
        if name in SPACES:
            return SPACES[name]
        if name in IGNORED:
            return ""
        if name in FUNCTIONS:
            return name + (" " if name != "mod" else "")
        if name in ("frac", "dfrac", "tfrac", "cfrac"):
            num, den = self.atom(), self.atom()
            return f"<sup>{num}</sup>⁄<sub>{den}</sub>"
        if name == "binom":
            top, bottom = self.atom(), self.atom()
            return f"(<sup>{top}</sup><sub>{bottom}</sub>)"
        if name == "sqrt":
            index = ""
            if self.peek() == "[":
                self.take()
                index = self.sequence(stop=("]",))
                self.take()
            body = self.atom()
            plain = re.sub(r"<[^>]+>", "", body)
            radicand = body if len(plain) <= 1 else f"({body})"
            return (f"<sup>{index}</sup>" if index else "") + f"√{radicand}"
        if name in ACCENTS:
            return self.atom() + ACCENTS[name]
        if name in ("mathbb", "Bbb"):
            raw = self.group_raw()
            return "".join(DOUBLE_STRUCK.get(ch, ch) for ch in raw)
        if name in ("mathbf", "textbf", "bm"):
            return f"<b>{self.atom()}</b>"
        if name in ("mathcal", "mathscr", "mathfrak"):
            return self.atom()
        if name in TEXT_COMMANDS:
            return html.escape(self.group_raw())
        if name in ("begin", "end"):
            env = self.group_raw()
            if env in ("pmatrix", "bmatrix"):
                return "(" if name == "begin" and env == "pmatrix" else ")" if env == "pmatrix" else \
                    ("[" if name == "begin" else "]")
            if env == "cases" and name == "begin":
                return "{ "
            return ""
        # Unknown: shown as written, backslash and braces kept.
        arg = "{" + self.group_raw() + "}" if self.peek() == "{" else ""
        return html.escape("\\" + name + arg)


def latex_html(src: str) -> str:
    """Qt rich text for the LaTeX math `src` (without its $ or \\( \\) delimiters)."""
    return _Parser(src.strip()).sequence()


# Inline: \( \) or $...$ (not "$5 and $10": no space inside the dollars, no digit right after).
# Display: $$ $$ or \[ \]. Code spans are matched first so math inside them stays code.
MATH = re.compile(r"(?P<code>(?P<ticks>`+).+?(?P=ticks))"
                  r"|\$\$(?P<d1>.+?)\$\$|\\\[(?P<d2>.+?)\\\]"
                  r"|\\\((?P<i1>.+?)\\\)|(?<![\\$\w])\$(?P<i2>[^\s$`](?:[^$\n`]*?[^\s$\\`])?)\$(?![\d$])", re.S)


def find_math(text: str):
    """(start, end, latex, display) for each math span in `text`, code spans skipped."""
    for m in MATH.finditer(text):
        if m.group("code"):
            continue
        display = m.group("d1") is not None or m.group("d2") is not None
        latex = next(g for g in (m.group("d1"), m.group("d2"), m.group("i1"), m.group("i2")) if g is not None)
        yield m.start(), m.end(), latex, display
