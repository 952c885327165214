"""Hostile papers every renderer must survive: injected mentions and links, huge text, many authors, unicode."""

from __future__ import annotations

from bot.model import Links, Paper
from tests.fakes import make_paper

INJECTION = (
    "<!channel> <!here> @everyone @here <@U0123ABC> <#C0123|general> <!subteam^S0123> "
    "<https://evil.example|click me> [x](https://evil.example) **bold** `code` &amp; ||spoiler|| "
    "<@123456789012345678> <@&876543210987654321> <@!123456789012345678>"
)


def hostile_papers() -> list[Paper]:
    """One paper per kind of trouble, each a plausible Daily Papers item."""
    return [
        make_paper(
            "2611.00101",
            title=f"Mentions {INJECTION}",
            abstract=f"Abstract {INJECTION}. " * 3,
            authors=("<@U999> Mallory", "@everyone"),
            organization="<!channel> Labs",
            keywords=("<!here>",),
            ai_summary=f"Summary {INJECTION}",
        ),
        make_paper("2611.00102", title="Long abstract", abstract="word " * 4000 + "end."),  # 20,000 characters
        make_paper("2611.00103", title="T" * 300 + " " + "title " * 50),  # 600 characters
        make_paper("2611.00104", title="Big collaboration", authors=tuple(f"Author Number{n}" for n in range(250))),
        make_paper(
            "2611.00105",
            title="Ünïcödé 🤖 模型 عربي \u202e reversed",
            abstract="Émoji 🧪 and 数学 $\\alpha$ math.",
            authors=("Zoë Ngọc Trần", "Tomás Lozano-Pérez"),
            upvotes=7,
            links=Links(
                hf="https://huggingface.co/papers/2611.00105",
                abstract="https://arxiv.org/abs/2611.00105",
                pdf="https://arxiv.org/pdf/2611.00105",
                code="https://github.com/a/b",
            ),
        ),
    ]
