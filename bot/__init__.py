"""paperbot: new research papers from Hugging Face Daily Papers and arXiv, in your team's channels."""

__version__ = "0.1.0"
