"""Paper sources. Each turns one upstream (HF Daily Papers, arXiv) into normalized ``Paper`` values."""
