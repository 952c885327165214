"""A paper's flow: poll, commit, deliver, follow posted papers, recaps, and the channels they go to."""
