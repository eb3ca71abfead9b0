"""What an annotator sees, without logging in: a campaign's project as one HTML page (and a screenshot of it).

The page is drawn from exactly what push sends Label Studio (the project's
title, description, instructions and label config, for one list): the
instructions that open before the first word (study title, information,
consent, the dimension's instructions, the buttons, the completion code),
then the rating screen of the list's first word with the label config's
header, the word and the buttons with their keys. It needs no server and no
push. What Label Studio adds around it (its top bar, the side panels, its
sign-up page) is not drawn: the README says which of those its settings
cannot remove.

With a headless Chromium (`$CHROMIUM`, or chromium on PATH; Debian:
apt-get install chromium) the page is also saved as a PNG.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.annotate.campaign import resolve_campaign
from workbench.annotate.push import assign, project_settings
from workbench.errors import WorkbenchError
from workbench.store.models import Campaign, CampaignList, CampaignTask
from workbench.study.load import LoadedStudy

_CSS = """
body { margin:0; font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif; color:#1f2328; background:#f6f8fa; }
header.bar { background:#fff; border-bottom:1px solid #d1d9e0; padding:.7rem 1.5rem; display:flex; gap:1rem; align-items:baseline; }
header.bar b { font-size:1.05rem; } header.bar span { color:#59636e; font-size:.9rem; }
main { max-width:960px; margin:1.5rem auto; padding:0 1rem; display:grid; gap:1.5rem; }
section { background:#fff; border:1px solid #d1d9e0; border-radius:8px; padding:1.2rem 1.6rem; }
section > h1 { font-size:.8rem; text-transform:uppercase; letter-spacing:.06em; color:#59636e; margin:0 0 .8rem; }
.lsf-header { font-size:.95rem; color:#59636e; margin:0; }
.wb-word { font-size:3.2rem; line-height:1.25; font-weight:600; text-align:center; padding:1.5rem 0 2rem; }
.choices { display:flex; flex-wrap:wrap; gap:.5rem; justify-content:center; }
.choices label { border:1px solid #d1d9e0; border-radius:6px; padding:.45rem .8rem; background:#fff; white-space:nowrap; }
.choices kbd { font:.75rem ui-monospace,monospace; color:#59636e; border:1px solid #d1d9e0; border-radius:4px; padding:0 .3em; margin-left:.4em; }
.submit { text-align:right; margin-top:1.4rem; } .submit span { border-radius:6px; padding:.45rem 1rem; background:#0b5cad; color:#fff; }
.submit span.skip { background:#fff; color:#1f2328; border:1px solid #d1d9e0; margin-right:.5rem; }
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


@dataclass
class Preview:
    campaign: str
    list_no: int
    word: str
    settings: dict
    html: str


def _first_word(session: Session, loaded: LoadedStudy, name: str, list_no: int) -> str:
    """The first word annotators of the list meet: from the store once pushed, else as push would assign it."""
    camp = session.scalar(select(Campaign).where(Campaign.name == name))
    if camp is not None:
        q = (select(CampaignTask.text).join(CampaignList, CampaignList.id == CampaignTask.list_id)
             .where(CampaignList.campaign_id == camp.id, CampaignList.list_no == list_no, CampaignTask.deleted.is_(False))
             .order_by(CampaignTask.position, CampaignTask.id).limit(1))  # fmt: skip
        word = session.scalar(q)
        if word is not None:
            return word
    rc = resolve_campaign(session, loaded, name)
    planned = assign(rc, {}, {}, {})
    if list_no not in planned:
        raise WorkbenchError(f"campaign {name!r} has {len(planned)} lists: choose --list from 1 to {len(planned)}.")
    return planned[list_no][0].text


def _render_config(config: str, word: str) -> str:
    """The label config's tags as HTML: Header, View (with its class), Text (the word), Choices (buttons with keys)."""
    root = ET.fromstring(config)

    def walk(node: ET.Element) -> str:
        tag = node.tag
        if tag == "Style":
            return ""
        if tag == "Header":
            return f'<p class="lsf-header">{html.escape(node.get("value", ""))}</p>'
        if tag == "Text":
            value = node.get("value", "")
            return f"<div>{html.escape(word if value.startswith('$') else value)}</div>"
        if tag == "Choices":
            buttons = []
            for choice in node.findall("Choice"):
                key = choice.get("hotkey")
                buttons.append(
                    f"<label>{html.escape(choice.get('value', ''))}" + (f"<kbd>{html.escape(key)}</kbd>" if key else "") + "</label>"
                )
            return '<div class="choices">' + "".join(buttons) + "</div>"
        inner = "".join(walk(child) for child in node)
        cls = node.get("className")
        return f'<div class="{html.escape(cls)}">{inner}</div>' if cls else f"<div>{inner}</div>"

    return walk(root)


def build_preview(session: Session, loaded: LoadedStudy, name: str, *, list_no: int = 1) -> Preview:
    """The preview page of one list of a campaign."""
    rc = resolve_campaign(session, loaded, name)
    word = _first_word(session, loaded, name, list_no)
    settings = project_settings(rc, list_no)
    skip = '<span class="skip">Skip</span>' if settings.get("show_skip_button") else ""
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(settings['title'])}: what annotators see</title><style>{_CSS}</style></head>\n<body>"
        f'<header class="bar"><b>{html.escape(settings["title"])}</b><span>{html.escape(settings["description"])}</span></header><main>'
        f'<section class="instructions"><h1>Instructions (shown before the first word, and on request)</h1>{settings["expert_instruction"]}</section>'
        f'<section class="task"><h1>The rating screen: the first word of list {list_no}</h1>'
        f'{_render_config(settings["label_config"], word)}<div class="submit">{skip}<span>Submit</span></div></section>'
        "</main></body></html>\n"
    )
    return Preview(name, list_no, word, settings, page)


def find_chromium() -> str | None:
    """$CHROMIUM, else chromium (Debian), chromium-browser or google-chrome on PATH, else /usr/bin/chromium."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def screenshot(page: Path, png: Path, *, width: int = 1100, height: int = 1400, timeout: float = 60) -> bool:
    """Save a headless Chromium's screenshot of a local HTML file; False when there is no Chromium."""
    chromium = find_chromium()
    if chromium is None:
        return False
    with tempfile.TemporaryDirectory(prefix="workbench-preview-") as profile:
        args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                f"--screenshot={png.resolve()}", page.resolve().as_uri()]  # fmt: skip
        try:
            done = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WorkbenchError(f"{chromium} could not take the screenshot ({exc}); the HTML preview was written.") from None
    if done.returncode != 0 or not png.exists():
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise WorkbenchError(f"{chromium} could not take the screenshot ({tail[0]}); the HTML preview was written.")
    return True
