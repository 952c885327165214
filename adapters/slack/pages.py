"""The three pages of Slack's install flow: install (the "Add to Slack" button), success (what to do
next) and failure (what went wrong, and a way to start again). Small, accessible HTML: one heading,
a main landmark, real links, readable contrast, no script; every value from outside is escaped."""

from __future__ import annotations

import html

STYLE = """
body { font: 17px/1.5 system-ui, sans-serif; margin: 0; background: #f7f7f8; color: #1d1c1d; }
main { max-width: 34rem; margin: 4rem auto; padding: 2rem; background: #fff; border-radius: 12px; }
h1 { font-size: 1.6rem; margin-top: 0; }
a.button { display: inline-block; padding: .7rem 1.2rem; border-radius: 8px; background: #4a154b;
  color: #fff; font-weight: 600; text-decoration: none; }
a.button:focus-visible { outline: 3px solid #1264a3; outline-offset: 2px; }
code { background: #f0f0f2; padding: .1rem .3rem; border-radius: 4px; }
"""

# Why an install did not finish, in words for the person who tried (bolt's reasons).
REASONS = {
    "access_denied": "The install was cancelled in Slack.",
    "invalid_browser": "This browser did not start the install (its cookie is missing), or the link was opened twice.",
    "invalid_state": "This install link was already used or has expired.",
    "missing_code": "Slack did not send back an authorization code.",
    "invalid_code": "Slack did not accept the authorization code: it may have been used already.",
    "storage_error": "paperbot could not save the installation. Please try again in a minute.",
}


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def install_page(authorize_url: str, command: str) -> str:
    """The page at ``/slack/install``: what paperbot does and the button to Slack's authorize URL."""
    return _page(
        "Add paperbot to Slack",
        "<h1>Add paperbot to your Slack workspace</h1>\n"
        "<p>paperbot posts new research papers from Hugging Face Daily Papers and arXiv to the channels "
        f"that care about them, and answers <code>{html.escape(command)} &lt;topic&gt;</code>.</p>\n"
        f'<p><a class="button" id="add-to-slack" href="{html.escape(authorize_url, quote=True)}">Add to Slack</a></p>\n'
        "<p>Slack will ask you to allow what paperbot needs: post in channels it is invited to, "
        "its slash command, reactions (to save papers) and direct messages (your exports and digests).</p>",
    )


def success_page(team_name: str, command: str) -> str:
    """After a successful install: the next two steps."""
    team = html.escape(team_name or "your workspace")
    cmd = html.escape(command)
    return _page(
        "paperbot is installed",
        f"<h1>paperbot is installed in {team}</h1>\n"
        "<p>Two steps to your first papers:</p>\n<ol>\n"
        "<li>Invite the bot to a channel: type <code>/invite @paperbot</code> there.</li>\n"
        f"<li>Choose topics: <code>{cmd} subscribe diffusion OR &quot;reinforcement learning&quot;</code>. "
        "New papers that match are posted as they appear.</li>\n</ol>\n"
        f"<p>Try <code>{cmd} help</code> for everything else. You can close this page.</p>",
    )


def failure_page(reason: str) -> str:
    """After a failed install: why, and a link to start again."""
    why = REASONS.get(reason, "The install did not finish.")
    return _page(
        "paperbot was not installed",
        "<h1>paperbot was not installed</h1>\n"
        f'<p id="reason">{html.escape(why)}</p>\n'
        '<p><a class="button" href="/slack/install">Start again</a></p>\n'
        f"<p>If this keeps happening, tell whoever runs paperbot the code <code>{html.escape(reason[:64])}</code>.</p>",
    )
