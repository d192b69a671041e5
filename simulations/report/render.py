"""The report's tables, built once from ``metrics.json`` and written as Markdown, HTML or console text.

The HTML page is self-contained: its style is inline and every plot is a ``data:`` PNG, so it
reads offline and travels as one file.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from fedotl.client.newuser import DESCRIPTIONS
from fedotl.simulations.report.metrics import BASELINES, MISTAKES_AT, best_strategy


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""
    numeric: list[bool] = field(default_factory=list)  # right-aligned columns
    wrap: tuple[int, ...] = ()  # columns of prose, wrapped in HTML rather than kept on one line

    def __post_init__(self) -> None:
        if not self.numeric:
            self.numeric = [i > 0 for i in range(len(self.headers))]


def _f(v: object, digits: int = 3) -> str:
    return "–" if v is None else f"{float(v):.{digits}f}"  # type: ignore[arg-type]


# ---------------------------------------------------------------- tables
def strategy_table(metrics: Mapping) -> Table | None:
    strategies = metrics.get("strategies") or {}
    if not strategies:
        return None
    best = best_strategy(strategies)
    personalised = any("global_mean_accuracy" in s for s in strategies.values())
    headers = ["strategy", "mean accuracy", "worst device", "macro-F1", "rounds"] + (["global model, before personalising"] if personalised else [])
    rows = []
    for name, s in strategies.items():
        worst = "–" if s.get("worst_accuracy") is None else f"{_f(s['worst_accuracy'])} ({s.get('worst_device')})"
        row = [name + (" (best)" if name == best and len(strategies) > 1 else ""), _f(s.get("mean_accuracy")), worst,
               _f(s.get("macro_f1")), str(s.get("rounds") or "–")]
        if personalised:
            row.append(_f(s.get("global_mean_accuracy")))
        rows.append(row)
    return Table("Strategies", headers, rows, "Test accuracy on each device's later windows, averaged over devices (unweighted).")


def device_table(metrics: Mapping) -> Table | None:
    strategies = {k: v for k, v in (metrics.get("strategies") or {}).items() if v.get("per_device")}
    if not strategies:
        return None
    devices = list(dict.fromkeys(d for s in strategies.values() for d in s["per_device"]))  # the run's device order
    rows = [[d] + [_f(s["per_device"].get(d)) for s in strategies.values()] for d in devices]
    return Table("Per device", ["device", *strategies], rows, "Test accuracy of each device under each strategy.")


def online_table(metrics: Mapping) -> Table | None:
    online = metrics.get("online") or {}
    if not online:
        return None
    headers = ["learner", "mistake rate", "devices", *(f"mistakes after {t}" for t in MISTAKES_AT), "what it is"]
    what = {**DESCRIPTIONS, **BASELINES}
    rows = [[name, _f(v["mistake_rate_mean"]), str(v.get("devices", "–")), *(_f(v.get("mistakes_at", {}).get(str(t)), 1) for t in MISTAKES_AT),
             what.get(name, "")] for name, v in online.items()]
    note = metrics.get("online_protocol") or "Final cumulative mistake rate, test-then-train, mean over devices."
    return Table("New-user learners", headers, rows, str(note), [0 < i < len(headers) - 1 for i in range(len(headers))],
                 wrap=(len(headers) - 1,))


def replay_table(metrics: Mapping) -> Table | None:
    """One row per replayed device: its windows, persistence, and each learner's accuracy and p99 latency."""
    dev = metrics.get("devices") or {}
    rows_in = dev.get("devices") or []
    if not rows_in:
        return None
    learners = list(dict.fromkeys(str(r.get("learner", "learner")) for r in rows_in))
    by_device: dict[str, dict[str, Mapping]] = {}
    for r in rows_in:
        by_device.setdefault(str(r.get("device")), {})[str(r.get("learner", "learner"))] = r
    headers = ["device", "windows", "persistence", *(f"{k} accuracy" for k in learners), *(f"{k} p99 ms" for k in learners)]
    rows = []
    for name, per in by_device.items():
        first = next(iter(per.values()))
        rows.append([name, str(first.get("windows_predicted", "–")), _f(first.get("persistence_accuracy")),
                     *(_f(per[k].get("accuracy")) if k in per else "–" for k in learners),
                     *(_f(per[k].get("latency_p99_ms"), 2) if k in per else "–" for k in learners)])
    lat = dev.get("latency_ms") or {}
    note = (f"Recorded order, prequential: each window predicted at once, learned from when its label came. Over every "
            f"prediction, latency p50 {_f(lat.get('p50'), 2)} ms and p99 {_f(lat.get('p99'), 2)} ms.")
    if dev.get("realtime_factor"):
        note += f" Replayed at {float(dev['realtime_factor']):.0f}× real time."
    return Table("Replayed devices", headers, rows, note)


def steps_table(metrics: Mapping) -> Table | None:
    steps = metrics.get("steps") or []
    if not steps:
        return None
    return Table("Steps", ["step", "seconds"], [[s["name"], _f(s.get("seconds"), 1)] for s in steps])


def headline(metrics: Mapping) -> list[Table]:
    """What the console ends with, and the report opens with: the strategies and the new-user learners."""
    return [t for t in (strategy_table(metrics), online_table(metrics)) if t is not None]


def details(metrics: Mapping) -> list[Table]:
    """What the report gives after its plots: every device, and the steps' times."""
    return [t for t in (device_table(metrics), replay_table(metrics), steps_table(metrics)) if t is not None]


# ---------------------------------------------------------------- the page's top
def title(metrics: Mapping) -> str:
    ds = metrics.get("dataset") or {}
    name = ds.get("name") if isinstance(ds, Mapping) else None
    return f"fedotl {metrics.get('kind', 'run')} report" + (f": {name}" if name else "")


def status_line(metrics: Mapping) -> str:
    if metrics.get("status") == "complete":
        return ""
    step = metrics.get("interrupted_in")
    status = metrics.get("status", "interrupted")
    return f"PARTIAL RUN: {status}{f' during step {step!r}' if step else ''}. The figures below cover only what finished."


def facts(metrics: Mapping) -> list[tuple[str, str]]:
    out = [("status", str(metrics.get("status"))), ("created", str(metrics.get("created", "–"))),
           ("fedotl", str(metrics.get("fedotl", "–"))), ("seed", str(metrics.get("seed", "–")))]
    ds = metrics.get("dataset")
    if isinstance(ds, Mapping):
        out.append(("data", " · ".join(f"{k.replace('_', ' ')} {v}" for k, v in ds.items() if k != "name" and not isinstance(v, (list, dict)))))
    for note in metrics.get("notes") or []:
        out.append(("note", str(note)))
    return out


# ---------------------------------------------------------------- Markdown
def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(metrics: Mapping, plots: Sequence[tuple[Path, str]], run_dir: Path) -> str:
    lines = [f"# {title(metrics)}", ""]
    if status_line(metrics):
        lines += [f"> **{status_line(metrics)}**", ""]
    lines += [f"* **{k}**: {_md_cell(v)}" for k, v in facts(metrics)] + [""]
    for t in headline(metrics):
        lines += _md_table(t)
    if plots:
        lines += ["## Plots", ""]
        for path, caption in plots:
            lines += [f"![{caption}]({path.relative_to(run_dir).as_posix()})", "", f"*{caption}*", ""]
    for t in details(metrics):
        lines += _md_table(t)
    return "\n".join(lines)


def _md_table(t: Table) -> list[str]:
    lines = [f"## {t.title}", ""]
    if t.note:
        lines += [t.note, ""]
    lines.append("| " + " | ".join(map(_md_cell, t.headers)) + " |")
    lines.append("|" + "|".join("---:" if n else "---" for n in t.numeric) + "|")
    lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in t.rows]
    return lines + [""]


# ---------------------------------------------------------------- console
def text(t: Table) -> str:
    widths = [max(len(h), *(len(r[i]) for r in t.rows)) if t.rows else len(h) for i, h in enumerate(t.headers)]
    cell = lambda v, i: v.rjust(widths[i]) if t.numeric[i] else v.ljust(widths[i])  # noqa: E731
    out = [t.title, "  " + "  ".join(cell(h, i) for i, h in enumerate(t.headers))]
    out += ["  " + "  ".join(cell(v, i) for i, v in enumerate(r)) for r in t.rows]
    return "\n".join(out)


# ---------------------------------------------------------------- HTML
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .3rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
.partial { background: #fff3cd; border: 1px solid #e0b100; padding: .6rem .9rem; border-radius: 4px; font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; font-size: .92rem; }
dt { font-weight: 600; color: #555; } dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .9rem; margin: .4rem 0 .2rem; }
th, td { padding: .25rem .7rem; border-bottom: 1px solid #e5e5e5; white-space: nowrap; }
th { background: #f5f5f7; text-align: left; white-space: normal; vertical-align: bottom; } td.prose { white-space: normal; min-width: 12rem; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
p.note { font-size: .88rem; color: #555; margin: .2rem 0; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .88rem; color: #555; }
"""


def _html_table(t: Table) -> str:
    cls = lambda i: ' class="num"' if t.numeric[i] else (' class="prose"' if i in t.wrap else "")  # noqa: E731
    head = "".join(f"<th{cls(i)}>{html.escape(h)}</th>" for i, h in enumerate(t.headers))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{html.escape(v)}</td>" for i, v in enumerate(r)) + "</tr>" for r in t.rows)
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return f"<h2>{html.escape(t.title)}</h2>{note}<div class=\"scroll\"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def html_page(metrics: Mapping, plots: Sequence[tuple[Path, str]]) -> str:
    parts = [f"<h1>{html.escape(title(metrics))}</h1>"]
    if status_line(metrics):
        parts.append(f'<p class="partial">{html.escape(status_line(metrics))}</p>')
    parts.append("<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts(metrics)) + "</dl>")
    parts += [_html_table(t) for t in headline(metrics)]
    if plots:
        parts.append("<h2>Plots</h2>")
        for path, caption in plots:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts += [_html_table(t) for t in details(metrics)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title(metrics))}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
