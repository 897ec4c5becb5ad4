"""Blocks: a user hides another user's reactions and questions from their own view."""
