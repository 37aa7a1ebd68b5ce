"""Flowbot: options-flow alerts from the FlashAlpha Lab API to Slack and email."""
