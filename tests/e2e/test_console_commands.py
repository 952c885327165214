"""The command core through the console, end to end: shell → poll → save → BibTeX."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bibtexparser
import pytest

from tests.e2e.conftest import ROOT, Run, base_env, json_lines
from tests.e2e.test_run_once import DAYS, arxiv_entry, hf_item
from tests.standins import ArxivEntry, ArxivStandIn, HuggingFaceStandIn, StandIn

pytestmark = pytest.mark.e2e


def test_subscribe_from_the_shell_poll_see_only_matches_save_and_export(
    real_redis_url: str, tmp_path: Path, paperbot: Run
) -> None:
    hf = HuggingFaceStandIn(
        {DAYS[0]: [hf_item("2611.00021", "Scaling Test-Time Reasoning"), hf_item("2611.00022", "Protein Folding")]}
    )
    robot = arxiv_entry("2611.00023", "Grasping with Robots")
    arxiv = ArxivStandIn(
        [ArxivEntry(robot.id, robot.title, robot.published, categories=("cs.RO",)), arxiv_entry("2611.00024", "Optics")]
    )
    with StandIn(hf) as hf_server, StandIn(arxiv) as arxiv_server:
        env = base_env(
            tmp_path,
            REDIS_URL=real_redis_url,
            HF_ENDPOINT=hf_server.url,
            ARXIV_API_URL=f"{arxiv_server.url}/api/query",
            PAPERBOT_ARXIV_CATEGORIES="cs.RO,physics.optics",
        )
        shell = subprocess.run(
            [sys.executable, "-m", "bot", "shell"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            input="/papers subscribe reasoning\n/papers subscribe cat:cs.RO\n/papers topics\n/papers subscribe (oops\nexit\n",
        )
        assert shell.returncode == 0, shell.stderr
        assert "Subscribed this channel to “reasoning”." in shell.stdout
        assert "This channel's topics:\n1. reasoning\n2. cat:cs.RO" in shell.stdout
        assert "a '(' is never closed" in shell.stdout

        run = paperbot(env, "run", "--once", "--json")
        assert run.returncode == 0, run.stderr
        delivered = {p["id"]: p["why"] for p in json_lines(run.stdout)}
        assert delivered == {"2611.00021": ["reasoning"], "2611.00023": ["cat:cs.RO"]}

        human = paperbot(env, "ask", "/papers reasoning")
        assert "1 paper matches “reasoning”" in human.stdout
        assert "Scaling Test-Time Reasoning" in human.stdout

        saved = paperbot(env, "ask", "/papers save 2611.00021", "--user", "ada")
        assert "Saved “Scaling Test-Time Reasoning”." in saved.stdout
        export = paperbot(env, "ask", "/papers export bibtex", "--user", "ada")
        assert export.returncode == 0, export.stderr
        entries = bibtexparser.parse_string(export.stdout).entries
        assert [e.fields_dict["eprint"].value for e in entries] == ["2611.00021"]
        assert entries[0].fields_dict["title"].value == "Scaling Test-Time Reasoning"
        assert "no saved papers" in paperbot(env, "ask", "/papers saved", "--user", "bob").stdout
        assert human.returncode == 0
        refused = paperbot(env, "ask", "/papers subscribe (oops")  # a script can tell a refused command
        assert refused.returncode == 1
        assert "a '(' is never closed" in refused.stdout
        assert paperbot(env, "ask", "/papers frobnicate").returncode == 0  # a bare word is a search (no match)
