"""Platform adapters: each translates platform events into core commands and renders core cards."""
